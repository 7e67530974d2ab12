# connfault_add_tests(): connfault's scenarios as ctest tests of a user's project.
# Installed with connfaultConfig.cmake, which defines connfault::connfault (the installed
# harness) and the built-in scenarios' folder before including this file.
#
#   connfault_add_tests(NAME myserver
#                       COMMAND "$<TARGET_FILE:myserver> --port {port}"
#                       [SCENARIOS name|file.ini ...]   # default: every built-in scenario
#                       [ARGS connfault-run-flag ...]
#                       [LABELS label ...])
#
# One test per scenario, named connfault/NAME/SCENARIO and labelled connfault (plus LABELS),
# each running `connfault run --target-cmd COMMAND ARGS SCENARIO`: `ctest -L connfault -j4`
# runs them, `--output-junit` reports them. A scenario connfault skips (with its reason, e.g.
# no network namespace for a silent drop) is reported by ctest as skipped, not passed.
# Mistakes (no NAME, unknown scenario, missing file, no port) stop the configure, named.

include_guard(GLOBAL)

# The scenario's test name (a built-in name, or a file's name without .ini) in name_var,
# and what to pass to `connfault run` in arg_var: a file as an absolute path, so the test
# finds it from ctest's working directory.
function(_connfault_scenario scenario name_var arg_var)
  if(scenario MATCHES "/|\\.ini$")
    get_filename_component(path "${scenario}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT EXISTS "${path}")
      message(FATAL_ERROR "connfault_add_tests: scenario file '${scenario}' not found (${path})")
    endif()
    get_filename_component(name "${path}" NAME)
    string(REGEX REPLACE "\\.ini$" "" name "${name}")
    set(${arg_var} "${path}" PARENT_SCOPE)
  else()
    get_property(dir GLOBAL PROPERTY CONNFAULT_SCENARIO_DIR)
    if(NOT EXISTS "${dir}/${scenario}.ini")
      message(FATAL_ERROR "connfault_add_tests: unknown scenario '${scenario}' (the built-in "
                          "ones are the .ini files in ${dir}; give a path for a file of your own)")
    endif()
    set(name "${scenario}")
    set(${arg_var} "${scenario}" PARENT_SCOPE)
  endif()
  set(${name_var} "${name}" PARENT_SCOPE)
endfunction()

# Every built-in scenario's name, sorted: the installed folder, read at configure time.
function(_connfault_builtin_scenarios out_var)
  get_property(dir GLOBAL PROPERTY CONNFAULT_SCENARIO_DIR)
  file(GLOB files LIST_DIRECTORIES false "${dir}/*.ini")
  if(NOT files)
    message(FATAL_ERROR "connfault_add_tests: no built-in scenarios in '${dir}'")
  endif()
  set(names "")
  foreach(file IN LISTS files)
    get_filename_component(name "${file}" NAME_WLE)
    list(APPEND names "${name}")
  endforeach()
  list(SORT names)
  set(${out_var} "${names}" PARENT_SCOPE)
endfunction()

function(connfault_add_tests)
  cmake_parse_arguments(PARSE_ARGV 0 CF "" "NAME;COMMAND" "SCENARIOS;ARGS;LABELS")
  if(CF_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "connfault_add_tests: unknown argument(s) '${CF_UNPARSED_ARGUMENTS}' "
                        "(takes NAME, COMMAND, SCENARIOS, ARGS, LABELS)")
  endif()
  if(NOT CF_NAME OR NOT CF_COMMAND)
    message(FATAL_ERROR "connfault_add_tests: NAME and COMMAND are required, e.g. "
                        "NAME myserver COMMAND \"$<TARGET_FILE:myserver> --port {port}\"")
  endif()
  string(FIND "${CF_COMMAND}" "{port}" port_at)
  if(port_at EQUAL -1 AND NOT "--port" IN_LIST CF_ARGS)
    message(FATAL_ERROR "connfault_add_tests(${CF_NAME}): COMMAND '${CF_COMMAND}' has no {port} "
                        "(connfault replaces it with a free port) and ARGS no --port")
  endif()
  if(NOT CF_SCENARIOS)
    _connfault_builtin_scenarios(CF_SCENARIOS)
  endif()
  set(seen "")
  foreach(scenario IN LISTS CF_SCENARIOS)
    _connfault_scenario("${scenario}" name arg)
    if(name IN_LIST seen)
      message(FATAL_ERROR "connfault_add_tests(${CF_NAME}): scenario '${name}' given twice")
    endif()
    list(APPEND seen "${name}")
    set(test "connfault/${CF_NAME}/${name}")
    add_test(NAME "${test}"
             COMMAND connfault::connfault run --target-cmd "${CF_COMMAND}" ${CF_ARGS} "${arg}")
    # connfault exits 0 for a skipped scenario; its totals line says so.
    set_tests_properties("${test}" PROPERTIES
      LABELS "connfault;${CF_LABELS}"
      SKIP_REGULAR_EXPRESSION "connfault: 0 passed, 0 failed, 1 skipped")
  endforeach()
endfunction()
