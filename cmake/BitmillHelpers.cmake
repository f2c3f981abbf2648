# Helpers that give every bitmill library and test the same flags.

function(bitmill_apply_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(BITMILL_WERROR)
        # GCC 12 at -O2 reports maybe-uninitialized and restrict inside
        # libstdc++'s std::string and std::optional that are false positives;
        # they stay warnings so that they cannot fail a build.
        target_compile_options(${target} PRIVATE
            -Werror -Wno-error=maybe-uninitialized -Wno-error=restrict)
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

# bitmill_test(NAME SOURCES ... DEPS ... LABELS ... [TIMEOUT s]): a GoogleTest
# binary whose cases are registered with CTest one by one. Tests find the
# server binary and the source tree through BITMILL_BINARY and
# BITMILL_SOURCE_DIR.
function(bitmill_test name)
    cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
    bitmill_apply_warnings(${name})
    if(NOT ARG_TIMEOUT)
        set(ARG_TIMEOUT 300)
    endif()
    gtest_discover_tests(${name}
        DISCOVERY_TIMEOUT 60
        TEST_LIST ${name}_TESTS
        PROPERTIES TIMEOUT ${ARG_TIMEOUT})
    # gtest_discover_tests (CMake 3.25) flattens list values in PROPERTIES,
    # so labels and the environment are set by a script that CTest runs
    # after discovery.
    set(properties_script ${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake)
    file(GENERATE OUTPUT ${properties_script} CONTENT
        "set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\" ENVIRONMENT \"BITMILL_BINARY=$<TARGET_FILE:bitmill>;BITMILL_SOURCE_DIR=${PROJECT_SOURCE_DIR}\")\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${properties_script})
endfunction()
