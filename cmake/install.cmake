# What `cmake --install` installs (docs/deploy.md uses it):
#
#   <prefix>/bin/awgproxy
#   <prefix>/lib/systemd/system/awgproxy-server@.service, awgproxy-client@.service
#       (AWG_SYSTEMD_UNITDIR; their ExecStart= names the installed binary)
#   <prefix>/share/man/man1/awgproxy.1, man5/awgproxy.conf.5  (generated at build time, AWG_MAN)
#   <prefix>/share/doc/awgproxy/  docs/, README.md, and systemd/low-port.conf (the drop-in for
#       ports below 1024)
#
# With the default prefix /usr/local the units land in /usr/local/lib/systemd/system, which
# systemd searches; `-DCMAKE_INSTALL_PREFIX=/usr` (or `cmake --install build --prefix /usr`)
# gives /usr/bin/awgproxy and /usr/lib/systemd/system.
include(GNUInstallDirs)

set(AWG_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd units go: relative to the install prefix, or an absolute path")
option(AWG_MAN "Generate and install the man pages (needs help2man and pandoc)" ON)

install(TARGETS awgproxy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES "contrib/awgproxy-server@.service.d/low-port.conf"
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/systemd)

# ---- systemd units ----------------------------------------------------------------------------
# contrib/ holds them with ExecStart=/usr/local/bin/awgproxy (the default prefix), so that they
# also work when copied by hand. At install time that path becomes the installed binary's, under
# whatever prefix `cmake --install --prefix` was given.
set(AWG_UNITS "awgproxy-server@.service" "awgproxy-client@.service")
set(AWG_UNIT_STAGE "${CMAKE_CURRENT_BINARY_DIR}/systemd")
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(AWG_BINDIR_EXPR "${CMAKE_INSTALL_BINDIR}")
else()
  set(AWG_BINDIR_EXPR "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
endif()
foreach(unit ${AWG_UNITS})
  install(CODE "
    file(READ \"${CMAKE_CURRENT_SOURCE_DIR}/contrib/${unit}\" awg_unit)
    string(REPLACE \"/usr/local/bin/awgproxy\" \"${AWG_BINDIR_EXPR}/awgproxy\" awg_unit \"\${awg_unit}\")
    file(WRITE \"${AWG_UNIT_STAGE}/${unit}\" \"\${awg_unit}\")
  ")
  install(FILES "${AWG_UNIT_STAGE}/${unit}" DESTINATION ${AWG_SYSTEMD_UNITDIR})
endforeach()

# ---- man pages --------------------------------------------------------------------------------
# awgproxy.1 from the built binary's --help (help2man), awgproxy.conf.5 from
# docs/config-reference.md (pandoc): scripts/gen-man.sh. Rebuilt whenever the binary, the
# reference or the script changes.
if(AWG_MAN)
  find_program(AWG_HELP2MAN help2man)
  find_program(AWG_PANDOC pandoc)
  if(AWG_HELP2MAN AND AWG_PANDOC)
    set(AWG_MAN_DIR "${CMAKE_CURRENT_BINARY_DIR}/man")
    add_custom_command(
      OUTPUT "${AWG_MAN_DIR}/awgproxy.1" "${AWG_MAN_DIR}/awgproxy.conf.5"
      COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/scripts/gen-man.sh" "$<TARGET_FILE:awgproxy>"
              "${AWG_MAN_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}"
      DEPENDS awgproxy "${CMAKE_CURRENT_SOURCE_DIR}/scripts/gen-man.sh"
              "${CMAKE_CURRENT_SOURCE_DIR}/docs/config-reference.md"
      COMMENT "Generating man pages awgproxy.1 and awgproxy.conf.5"
      VERBATIM)
    add_custom_target(awgproxy-man ALL
      DEPENDS "${AWG_MAN_DIR}/awgproxy.1" "${AWG_MAN_DIR}/awgproxy.conf.5")
    install(FILES "${AWG_MAN_DIR}/awgproxy.1" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
    install(FILES "${AWG_MAN_DIR}/awgproxy.conf.5" DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
  else()
    message(WARNING "help2man or pandoc not found: the man pages will not be built or installed "
                    "(scripts/setup-deps.sh installs both; -DAWG_MAN=OFF silences this)")
  endif()
endif()
