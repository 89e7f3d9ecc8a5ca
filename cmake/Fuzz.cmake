# popguard_fuzz_target(NAME ENTRY LIBRARY [SEEDS DIR])
#   With -DPOPGUARD_FUZZ=ON (and clang), builds a libFuzzer binary from the
#   ENTRY source and the sources of LIBRARY, compiled again with coverage
#   instrumentation so the library every other target links stays plain,
#   and registers a short smoke run labelled `fuzz`. With SEEDS the run
#   starts from the inputs in DIR, which it only reads: what it finds goes
#   to a corpus folder in the build tree.
option(POPGUARD_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
set(POPGUARD_FUZZ_SECONDS 30 CACHE STRING "How long each fuzz smoke test runs")
if(POPGUARD_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "POPGUARD_FUZZ needs clang for libFuzzer: configure with "
                      "-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
endif()

function(popguard_fuzz_target name entry library)
  cmake_parse_arguments(FUZZ "" "SEEDS" "" ${ARGN})
  if(NOT POPGUARD_FUZZ)
    return()
  endif()
  get_target_property(lib_dir ${library} SOURCE_DIR)
  get_target_property(lib_sources ${library} SOURCES)
  list(TRANSFORM lib_sources PREPEND "${lib_dir}/")
  add_executable(${name} ${entry} ${lib_sources})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR})
  # UBSan findings must fail the run, as ASan findings do.
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                                         -fno-sanitize-recover=undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  set(corpus)
  if(FUZZ_SEEDS)
    set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus ${FUZZ_SEEDS})
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  endif()
  add_test(NAME ${name}_smoke COMMAND ${name} -max_total_time=${POPGUARD_FUZZ_SECONDS} ${corpus})
  set_tests_properties(${name}_smoke PROPERTIES LABELS fuzz)
endfunction()
