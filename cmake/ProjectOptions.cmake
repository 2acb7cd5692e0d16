# project_options: warnings and definitions every target of ours links against.
add_library(project_options INTERFACE)
target_compile_options(project_options INTERFACE
  -Wall -Wextra -Werror -Wpedantic -Wshadow -Wnon-virtual-dtor
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)  # GCC only (clang has no such warning)
target_compile_definitions(project_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_CONCEPTS)
target_include_directories(project_options INTERFACE ${PROJECT_SOURCE_DIR}/src)

# add_project_test(<name> SOURCES <files...> LIBS <targets...> [INTEGRATION])
# One GoogleTest executable registered with CTest; INTEGRATION labels it so (needs real servers,
# which the test itself starts through src/testing).
function(add_project_test name)
  cmake_parse_arguments(arg "INTEGRATION" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE project_options ${arg_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(arg_INTEGRATION)
    gtest_discover_tests(${name} PROPERTIES LABELS integration TIMEOUT 300 DISCOVERY_TIMEOUT 60)
  else()
    gtest_discover_tests(${name} PROPERTIES LABELS unit TIMEOUT 120 DISCOVERY_TIMEOUT 60)
  endif()
endfunction()
