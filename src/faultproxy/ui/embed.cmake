# Compiles the console's static files into C++ (run by CMake itself at build time, no other tool):
#   cmake -DOUTPUT=<file.cpp> -DBASE=<dir> -DFILES=a.html,b.js -P embed.cmake
# Each file becomes a byte array plus its path under /ui/ and the SHA-256 of its bytes (the ETag).
cmake_minimum_required(VERSION 3.20)

string(REPLACE "," ";" FILES "${FILES}")
set(arrays "")
set(entries "")
set(index 0)
foreach(name IN LISTS FILES)
  set(path "${BASE}/${name}")
  file(READ "${path}" hex HEX)
  file(SHA256 "${path}" digest)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # Two hex digits per byte -> "0xNN,"; a trailing 0 keeps empty files a valid array.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "// ${name}\nconstexpr unsigned char kFile${index}[] = {\n    ${bytes}0};\n")
  string(APPEND entries "      {\"${name}\", {reinterpret_cast<const char*>(kFile${index}), ${size}}, \"${digest}\"},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(content "// Generated at build time by src/faultproxy/ui/embed.cmake from src/faultproxy/ui/: do not edit.
#include \"faultproxy/console_assets.h\"

namespace faultproxy {
namespace {

${arrays}
}  // namespace

const std::vector<ConsoleAsset>& console_assets() {
  static const std::vector<ConsoleAsset> assets = {
${entries}  };
  return assets;
}

}  // namespace faultproxy
")

# Rewritten only when it changes, so an unchanged console does not recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${content}")
