# What `cmake --install` gives users besides the tool: the CMake package (find_package(connfault)
# with connfault_add_tests()). The binaries, man pages and scenarios are
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

