# project_options: warnings and definitions every target of ours links against.
add_library(project_options INTERFACE)
target_compile_options(project_options INTERFACE
  -Wall -Wextra -Werror -Wpedantic -Wshadow -Wnon-virtual-dtor
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)  # GCC only (clang has no such warning)
target_compile_definitions(project_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_CONCEPTS)
target_include_directories(project_options INTERFACE ${PROJECT_SOURCE_DIR}/src)

# add_project_test(<name> SOURCES <files...> LIBS <targets...> [INTEGRATION] [ONE_PROCESS])
# One GoogleTest executable registered with CTest; INTEGRATION labels it so (needs real servers,
# which the test itself starts through src/testing). Each test runs in a process of its own, unless
# ONE_PROCESS: the executable is then one CTest test, for suites whose tests share a server started
# once per suite (on a loaded 2-core machine a MariaDB install takes 5-10 s, once per process).
function(add_project_test name)
  cmake_parse_arguments(arg "INTEGRATION;ONE_PROCESS" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE project_options ${arg_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(arg_INTEGRATION)
    set(label integration)
    set(timeout 300)
  else()
    set(label unit)
    set(timeout 120)
  endif()
  if(arg_ONE_PROCESS)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout})
  else()
    gtest_discover_tests(${name} PROPERTIES LABELS ${label} TIMEOUT ${timeout} DISCOVERY_TIMEOUT 60)
  endif()
endfunction()
