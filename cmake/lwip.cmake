# lwIP is compiled from an upstream/Debian source tree with our own lwipopts.h and arch/cc.h
# (lwip_port/). It is configured, never patched.
if(NOT EXISTS "${LWIP_SOURCE_DIR}/src/core/tcp.c")
  message(FATAL_ERROR
    "lwIP sources not found in LWIP_SOURCE_DIR=${LWIP_SOURCE_DIR}.\n"
    "Run scripts/setup-deps.sh (fetches Debian's source package 'lwip'), or pass "
    "-DLWIP_SOURCE_DIR=/path/to/lwip-2.1.x")
endif()
set(_l "${LWIP_SOURCE_DIR}/src")
set(AWG_LWIP_SRC
  ${_l}/core/init.c ${_l}/core/def.c ${_l}/core/inet_chksum.c ${_l}/core/ip.c
  ${_l}/core/mem.c ${_l}/core/memp.c ${_l}/core/netif.c ${_l}/core/pbuf.c ${_l}/core/raw.c
  ${_l}/core/stats.c ${_l}/core/sys.c ${_l}/core/tcp.c ${_l}/core/tcp_in.c ${_l}/core/tcp_out.c
  ${_l}/core/timeouts.c ${_l}/core/udp.c
  ${_l}/core/ipv4/icmp.c ${_l}/core/ipv4/ip4.c ${_l}/core/ipv4/ip4_addr.c ${_l}/core/ipv4/ip4_frag.c
  ${_l}/core/ipv6/icmp6.c ${_l}/core/ipv6/inet6.c ${_l}/core/ipv6/ip6.c ${_l}/core/ipv6/ip6_addr.c
  ${_l}/core/ipv6/ip6_frag.c ${_l}/core/ipv6/nd6.c ${_l}/core/ipv6/mld6.c)
add_library(awg_lwip STATIC ${AWG_LWIP_SRC} "${CMAKE_SOURCE_DIR}/lwip_port/sys_port.c"
            "${CMAKE_SOURCE_DIR}/lwip_port/lwip_mem.c")
target_include_directories(awg_lwip SYSTEM PUBLIC "${CMAKE_SOURCE_DIR}/lwip_port" "${_l}/include")
# lwIP's own sources are built as they come (-w); our port files with our warnings.
set_source_files_properties(${AWG_LWIP_SRC} PROPERTIES COMPILE_OPTIONS -w)
set_source_files_properties("${CMAKE_SOURCE_DIR}/lwip_port/sys_port.c"
  "${CMAKE_SOURCE_DIR}/lwip_port/lwip_mem.c" PROPERTIES COMPILE_OPTIONS "${AWG_WARNINGS}")
# sys_port.c takes the checksum from our header-only src/util/inet_sum.h.
# sys_now() reads the loop's clock (util/batch_clock.h: uv_hrtime).
target_include_directories(awg_lwip PRIVATE "${CMAKE_SOURCE_DIR}/src")
target_link_libraries(awg_lwip PUBLIC PkgConfig::UV)
# lwIP 2.1's TCP option parser builds the 32-bit timestamp from bytes shifted into an int
# (tcp_in.c, tcp_parseopt: byte << 24), which UBSan reports for every timestamp >= 2^31. It is
# third-party code we configure but never patch: that one check is off for lwIP alone.
if(AWG_SANITIZE OR AWG_FUZZ)
  target_compile_options(awg_lwip PRIVATE -fno-sanitize=shift)
endif()
