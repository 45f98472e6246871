#!/usr/bin/env bash
# Generates the manual pages from their sources, so that they never disagree with them:
#
#   awgproxy.1       help2man from the binary's own `awgproxy --help` and `--version`, plus one
#                    section per command listed under "Commands:" in `awgproxy --help`, holding
#                    that command's own `awgproxy CMD --help` text (whatever commands the binary
#                    lists: nothing here names them)
#   awgproxy.conf.5  pandoc from docs/config-reference.md, with a NAME and SYNOPSIS added
#
# Usage: scripts/gen-man.sh AWGPROXY_BINARY OUTDIR [SOURCE_DIR]
# Needs help2man and pandoc (Debian packages of the same names; scripts/setup-deps.sh installs
# them). SOURCE_DATE_EPOCH, when set, fixes the date in the pages' footers.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 AWGPROXY_BINARY OUTDIR [SOURCE_DIR]" >&2
  exit 2
fi
bin=$1
out=$2
src=${3:-$(cd "$(dirname "$0")/.." && pwd)}
for tool in help2man pandoc; do
  if ! command -v "$tool" >/dev/null; then
    echo "$0: $tool is not installed (apt-get install $tool, or scripts/setup-deps.sh)" >&2
    exit 1
  fi
done
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 1; }
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Roff-escape plain text lines: backslash, hyphen-minus (so that options stay copyable), quotes,
# and a leading control character.
roff_escape() {
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e 's/`/\\(ga/g' -e "s/'/\\\\(aq/g" -e 's/^\./\\\&./'
}

version=$("$bin" --version | awk 'NR == 1 { print $2 }')
[ -n "$version" ] || { echo "$0: $bin --version printed no version" >&2; exit 1; }

# ---- awgproxy.1 -------------------------------------------------------------------------------

# The commands: the lines "  NAME  description" of the "Commands:" block of `awgproxy --help`.
"$bin" --help >"$tmp/help.txt"
awk '
  /^Commands:[[:space:]]*$/ { inblock = 1; next }
  inblock && /^[[:space:]]*$/ { exit }
  inblock && /^  [a-z][a-z0-9-]*  +[^ ]/ {
    name = $1
    desc = $0; sub(/^  [a-z][a-z0-9-]*  +/, "", desc)
    print name "\t" desc
  }
' "$tmp/help.txt" >"$tmp/commands.tsv"
if [ ! -s "$tmp/commands.tsv" ]; then
  echo "$0: found no \"Commands:\" list in \`$bin --help\`" >&2
  exit 1
fi

{
  echo "[NAME]"
  echo "awgproxy \\- obfuscated AmneziaWG/WireGuard proxy (SOCKS, HTTP, forwards), no root or TUN needed"
  echo
  echo "[COMMANDS]"
  echo "Each command's own \\fBawgproxy\\fR \\fIcommand\\fR \\fB\\-\\-help\\fR text."
  while IFS=$'\t' read -r name desc; do
    echo ".SS \"awgproxy $name\""
    printf '%s\n' "$desc" | roff_escape
    # A command whose --help is not a usage text (e.g. `version` prints the version) gets its
    # one-line description only.
    if "$bin" "$name" --help >"$tmp/cmd.txt" 2>/dev/null && head -n 1 "$tmp/cmd.txt" | grep -q '^Usage:'; then
      echo ".PP"
      echo ".nf"
      roff_escape <"$tmp/cmd.txt"
      echo ".fi"
    fi
  done <"$tmp/commands.tsv"
  echo
  echo "[FILES]"
  echo ".TP"
  echo ".I /var/lib/awgproxy/NAME/NAME.conf"
  echo "The config of the service \\fBawgproxy\\-server@NAME\\fR (its state directory, owned by"
  echo "the service's dynamic user); \\fB[Control] Listen\\fR is"
  echo ".IR /var/lib/awgproxy/NAME/NAME.sock ."
  echo ".TP"
  echo ".I /var/lib/awgproxy\\-client/NAME/NAME.conf"
  echo "The config of the service \\fBawgproxy\\-client@NAME\\fR."
  echo ".TP"
  echo ".I /run/awgproxy.sock"
  echo "Where \\fBawgproxy ctl\\fR connects when given neither \\fB\\-s\\fR, \\fB\\-\\-connect\\fR nor \\fB\\-c\\fR."
  echo
  echo "[SEE ALSO]"
  echo ".BR awgproxy.conf (5),"
  echo ".BR systemd.exec (5),"
  echo ".BR wg (8)."
  echo "The documentation directory (docs/ in the source): deploy.md (a server from scratch),"
  echo "config\\-reference.md, observability.md, client.md."
} >"$tmp/include.h2m"

help2man --no-info --no-discard-stderr --version-string="$version" \
  --name="obfuscated AmneziaWG/WireGuard proxy, no root or TUN needed" \
  --include="$tmp/include.h2m" --output="$tmp/awgproxy.1" "$bin"

# ---- awgproxy.conf.5 --------------------------------------------------------------------------

ref=$src/docs/config-reference.md
[ -f "$ref" ] || { echo "$0: $ref not found" >&2; exit 1; }
date=$(LC_ALL=C date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} '+%B %Y')
# Left-aligned text (.na): the reference's tables have narrow columns holding long key names,
# which cannot be justified without troff warnings.
cat >"$tmp/conf-head.man" <<'EOF'
.na
.SH NAME
awgproxy.conf \- awgproxy configuration file: an AmneziaWG/WireGuard config with awgproxy's own sections
.SH SYNOPSIS
.I /var/lib/awgproxy/NAME/NAME.conf
(\fBawgproxy\-server@NAME\fR),
.I /var/lib/awgproxy\-client/NAME/NAME.conf
(\fBawgproxy\-client@NAME\fR), or any file given as
.B awgproxy client|server|check \-c
.IR FILE .
.SH DESCRIPTION
EOF
# The document's "# ..." title line is dropped (the page has its own NAME), "##" become
# sections, "###" subsections; the "---" rules between parts are dropped too.
sed -e '1{/^# /d}' -e '/^---$/d' "$ref" >"$tmp/reference.md"
pandoc --from=gfm --to=man --standalone --shift-heading-level-by=-1 \
  --metadata=title:AWGPROXY.CONF --metadata=section:5 \
  --metadata="header:awgproxy configuration" --metadata="footer:awgproxy $version" \
  --metadata="date:$date" \
  --include-before-body="$tmp/conf-head.man" \
  --output="$tmp/awgproxy.conf.5.in" "$tmp/reference.md"

# pandoc gives every table column the same share of the line (tbl text blocks), which at 80 or
# 100 columns squeezes long key names and makes troff warn. So, inside table cells, camelCase
# names and paths get break points (\:, invisible), and each table's columns get a width: at least
# the column's longest word, the rest of the indented line shared by the amount of text. The
# `.ne` keeps tbl from warning about a cell "not fitting on one page" of man's single long page.
sed -e '/^T{$/,/^T}/{/^[.T]/!{s/\([a-z]\)\([A-Z]\)/\1\\:\2/g;s#/#/\\:#g}}' \
  "$tmp/awgproxy.conf.5.in" >"$tmp/awgproxy.conf.5.br"
cat >"$tmp/tables.awk" <<'AWK'
function flush_table(   i, j, summin, sumtot, f) {
  summin = 0; sumtot = 0
  for (i = 1; i <= ncols; i++) { summin += minw[i]; sumtot += tot[i] }
  if (sumtot == 0) sumtot = 1
  print ".if \\n[cR] .ne 1000v"
  printf ".nr awg-free \\n[.l]-\\n[.i]-%dn-%dn\n", 3 * (ncols - 1) + 1, summin
  print ".if \\n[awg-free]<0 .nr awg-free 0"
  for (i = 1; i <= ncols; i++)
    printf ".nr awg-w%d %dn+(\\n[awg-free]*%d/1000)\n", i, minw[i], int(1000 * tot[i] / sumtot)
  f = ""
  for (i = 1; i <= ncols; i++) f = f (i > 1 ? " " : "") kind[i] "w(\\n[awg-w" i "]u)"
  for (j = 1; j <= nbuf; j++) print (j == fmtline ? f "." : buf[j])
}
function measure(s,   parts, k, m, len) {
  gsub(/\\f\[[A-Z]*\]/, "", s); gsub(/\\f[A-Z]/, "", s)
  gsub(/\\\[[^]]*\]/, "x", s); gsub(/\\&/, "", s); gsub(/\\-/, "-", s)
  gsub(/\\:/, " ", s); gsub(/\\ /, "x", s)
  tot[col] += length(s)
  m = split(s, parts, " ")
  for (k = 1; k <= m; k++) { len = length(parts[k]); if (len > minw[col]) minw[col] = len }
}
/^\.TS$/ && !intable {
  intable = 1; nbuf = 0; fmtline = 0; ncols = 0; col = 0
  buf[++nbuf] = $0; next
}
intable {
  buf[++nbuf] = $0
  if (!fmtline && /^[lrc]( [lrc])*\.$/) {
    fmtline = nbuf
    ncols = split(substr($0, 1, length($0) - 1), kind, " ")
    for (i = 1; i <= ncols; i++) { minw[i] = 1; tot[i] = 0 }
  } else if ($0 == "T{") col = 1
  else if ($0 == "T}@T{") col++
  else if ($0 ~ /^T}/) col = 0
  else if ($0 == ".TE") {
    intable = 0
    if (fmtline) flush_table(); else for (j = 1; j <= nbuf; j++) print buf[j]
  } else if (col > 0 && $0 !~ /^\./) measure($0)
  next
}
{ print }
AWK
awk -f "$tmp/tables.awk" "$tmp/awgproxy.conf.5.br" >"$tmp/awgproxy.conf.5"

mv "$tmp/awgproxy.1" "$out/awgproxy.1"
mv "$tmp/awgproxy.conf.5" "$out/awgproxy.conf.5"
