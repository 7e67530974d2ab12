# What `cmake --install` and `cpack -G DEB` give users: the CMake package (find_package(connfault)
# with connfault_add_tests()) and the Debian package. The binaries, man pages and scenarios are
# installed by server/ and harness/; their targets are exported here as connfault::.
include(CMakePackageConfigHelpers)

set(CONNFAULT_CMAKE_INSTALL_DIR lib/cmake/connfault)
# Where harness/ installs the built-in scenarios (and connfault looks for them, installed).
set(CONNFAULT_SCENARIO_INSTALL_DIR share/connfault/scenarios)

install(EXPORT connfaultTargets NAMESPACE connfault:: DESTINATION ${CONNFAULT_CMAKE_INSTALL_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/connfaultConfig.cmake.in
  ${PROJECT_BINARY_DIR}/connfaultConfig.cmake
  INSTALL_DESTINATION ${CONNFAULT_CMAKE_INSTALL_DIR}
  PATH_VARS CONNFAULT_SCENARIO_INSTALL_DIR)
# 0.x: a new minor version may change the interface. Executables only: any architecture's
# project can use them.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/connfaultConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/connfaultConfig.cmake
              ${PROJECT_BINARY_DIR}/connfaultConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/connfaultAddTests.cmake
        DESTINATION ${CONNFAULT_CMAKE_INSTALL_DIR})

# The .deb: `cpack -G DEB` in the build tree, everything under /usr. Depends is computed by
# dpkg-shlibdeps (dpkg-dev) from what the binaries link: libpcap, libnftables, libdw, libinih.
set(CONNFAULT_MAINTAINER "connfault maintainers <maintainers@users.noreply.r-seed-22bdedbb.example>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME connfault)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${CONNFAULT_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "connection-fault testing for network servers")
set(CPACK_PACKAGE_DESCRIPTION
  "connfault starts (or attaches to) a server, throws misbehaving TCP clients at it (aborts
mid-response, resets, half-closes, slowloris, silent drops, fd exhaustion) and checks from
outside the process that it keeps accepting, stays alive, does not spin and leaks no file
descriptors or sockets. Includes connfault-server, a reference epoll HTTP/1.1 server, the
built-in scenarios and a CMake package (find_package(connfault), connfault_add_tests).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
include(CPack)
