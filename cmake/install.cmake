# What `cmake --install` installs.
include(GNUInstallDirs)
install(TARGETS awgproxy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
