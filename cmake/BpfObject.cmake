# bpf_object(NAME SOURCE [DEFINES -DX...] [DEPENDS headers...])
#   Compiles SOURCE with clang for the BPF target and generates a libbpf
#   skeleton with bpftool. Defines an INTERFACE target NAME_skel whose
#   include path holds NAME.skel.h, so C++ code links against it.
find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)

execute_process(COMMAND ${CMAKE_C_COMPILER} -dumpmachine
                OUTPUT_VARIABLE POPGUARD_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REGEX REPLACE "-.*" "" _bpf_arch "${CMAKE_SYSTEM_PROCESSOR}")
if(_bpf_arch STREQUAL "x86_64")
  set(POPGUARD_BPF_ARCH x86)
elseif(_bpf_arch STREQUAL "aarch64")
  set(POPGUARD_BPF_ARCH arm64)
else()
  set(POPGUARD_BPF_ARCH ${_bpf_arch})
endif()

function(bpf_object name source)
  cmake_parse_arguments(ARG "" "" "DEFINES;DEPENDS" ${ARGN})
  set(out_dir ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  set(werror)
  if(POPGUARD_WERROR)
    set(werror -Werror)
  endif()
  # -mcpu=v3: atomics and 32-bit jumps; the uapi asm/ headers live under
  # the multiarch include directory.
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${POPGUARD_BPF_ARCH}
            -I/usr/include/${POPGUARD_MULTIARCH} -I${CMAKE_SOURCE_DIR}/bpf
            -Wall -Wno-unused-function ${werror} ${ARG_DEFINES}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}
    DEPENDS ${source} ${ARG_DEPENDS}
    COMMENT "BPF ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "Skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir} ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
