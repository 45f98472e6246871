#include "awg/awg_params.h"
