# Writes the manual page: cmake -DEMBSTORE=CMD -DTEMPLATE=embstore.1.in
#   -DVERSION=V -DOUT=embstore.1 -P manpage.cmake
# Each command's section is its own --help text, as the command prints it.

cmake_minimum_required(VERSION 3.25)
# roff: a backslash is \e; a line starting with . or ' would be a request.
function(roff_text text out)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

execute_process(COMMAND ${EMBSTORE} --help OUTPUT_VARIABLE top ERROR_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EMBSTORE} --help failed (${rc})")
endif()
# The commands are the indented lines of the overview: "  NAME   what it does"
# (with ; kept out of CMake's list separator).
string(REPLACE ";" "<semicolon>" top "${top}")
string(REGEX MATCHALL "\n  [a-z]+ +[^\n]*" lines "${top}")
set(sections "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^\n  ([a-z]+) +(.*)$" "\\1" name "${line}")
  string(REGEX REPLACE "^\n  ([a-z]+) +(.*)$" "\\2" what "${line}")
  string(REPLACE "<semicolon>" ";" what "${what}")
  execute_process(COMMAND ${EMBSTORE} ${name} --help OUTPUT_VARIABLE help ERROR_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${EMBSTORE} ${name} --help failed (${rc})")
  endif()
  string(STRIP "${help}" help)
  roff_text("${help}" help)
  roff_text("${what}" what)
  string(APPEND sections ".SS ${name}\n${what}.\n.PP\n.nf\n${help}\n.fi\n")
endforeach()
if(sections STREQUAL "")
  message(FATAL_ERROR "no commands found in `${EMBSTORE} --help`")
endif()
string(STRIP "${sections}" COMMANDS)
file(READ ${TEMPLATE} page)
string(REPLACE "@COMMANDS@" "${COMMANDS}" page "${page}")
string(REPLACE "@VERSION@" "${VERSION}" page "${page}")
file(WRITE ${OUT} "${page}")
