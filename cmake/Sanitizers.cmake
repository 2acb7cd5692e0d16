# Sanitizer switches, applied to every target of the project (set before any target is defined).
if(ENABLE_ASAN_UBSAN AND ENABLE_TSAN)
  message(FATAL_ERROR "ASan/UBSan and TSan cannot be combined")
endif()
if(ENABLE_FUZZING AND (ENABLE_ASAN_UBSAN OR ENABLE_TSAN))
  message(FATAL_ERROR "ENABLE_FUZZING brings its own sanitizers (ASan+UBSan)")
endif()
if(ENABLE_ASAN_UBSAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(ENABLE_TSAN)
  # -Wno-tsan: GCC warns that TSan does not model atomic_thread_fence (used inside Asio).
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
endif()
if(ENABLE_FUZZING)
  # libFuzzer's coverage instrumentation everywhere; the fuzz targets themselves link -fsanitize=fuzzer
  # (fuzz/CMakeLists.txt), which supplies main().
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ENABLE_FUZZING needs clang (use the fuzz preset)")
  endif()
  # -fno-sanitize=function: clang 14 cannot emit its prologue data in coroutines ("Cannot represent
  # a difference across sections", llvm/llvm-project#49689, #54153).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=function
                      -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
