# Helpers that give every bitmill library and test the same flags.

function(bitmill_apply_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(BITMILL_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()

# bitmill_library(NAME SOURCES ... DEPS ...): a static library rooted at src/.
function(bitmill_library name)
    cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
    add_library(${name} STATIC ${ARG_SOURCES})
    target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${name} PUBLIC ${ARG_DEPS})
    bitmill_apply_warnings(${name})
endfunction()

# bitmill_test(NAME SOURCES ... DEPS ... LABELS ...): a GoogleTest binary whose
# cases are registered with CTest one by one.
function(bitmill_test name)
    cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
    bitmill_apply_warnings(${name})
    if(NOT ARG_TIMEOUT)
        set(ARG_TIMEOUT 300)
    endif()
    # A list inside PROPERTIES must keep its separators escaped, or CTest
    # reads its second item as a property name.
    string(REPLACE ";" "\\;" labels "${ARG_LABELS}")
    gtest_discover_tests(${name}
        DISCOVERY_TIMEOUT 60
        PROPERTIES LABELS "${labels}" TIMEOUT ${ARG_TIMEOUT}
        ENVIRONMENT "BITMILL_BINARY=$<TARGET_FILE:bitmill>;BITMILL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
