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

# bitmill_test(NAME SOURCES ... DEPS ... LABELS ... [FIXTURES ...] [TIMEOUT s]):
# a GoogleTest binary whose cases are registered with CTest one by one. Tests
# find the server binary and the source tree through BITMILL_BINARY and
# BITMILL_SOURCE_DIR, and the services that tests/services starts (the CTest
# fixtures named in FIXTURES) through BITMILL_TEST_SERVICES_DIR.
function(bitmill_test name)
    cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS;FIXTURES" ${ARGN})
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
    set(fixtures_property "")
    if(ARG_FIXTURES)
        set(fixtures_property " FIXTURES_REQUIRED \"${ARG_FIXTURES}\"")
    endif()
    file(GENERATE OUTPUT ${properties_script} CONTENT
        "set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\"${fixtures_property} ENVIRONMENT \"BITMILL_BINARY=$<TARGET_FILE:bitmill>;BITMILL_SOURCE_DIR=${PROJECT_SOURCE_DIR};BITMILL_TEST_SERVICES_DIR=${BITMILL_TEST_SERVICES_DIR}\")\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${properties_script})
endfunction()

# bitmill_test_variant(TARGET PREFIX LABELS ... [FIXTURES ...] [ENVIRONMENT ...]
# [TIMEOUT s]): registers the cases of an existing bitmill_test binary once
# more, named PREFIX.Suite.Case, with their own labels, fixtures and extra
# environment variables, e.g. the end-to-end suites against another
# deployment.
function(bitmill_test_variant target prefix)
    cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;FIXTURES;ENVIRONMENT" ${ARGN})
    if(NOT ARG_TIMEOUT)
        set(ARG_TIMEOUT 300)
    endif()
    gtest_discover_tests(${target}
        DISCOVERY_TIMEOUT 60
        TEST_PREFIX "${prefix}."
        TEST_LIST ${target}_${prefix}_TESTS
        PROPERTIES TIMEOUT ${ARG_TIMEOUT})
    set(fixtures_property "")
    if(ARG_FIXTURES)
        set(fixtures_property " FIXTURES_REQUIRED \"${ARG_FIXTURES}\"")
    endif()
    set(environment "BITMILL_BINARY=$<TARGET_FILE:bitmill>;BITMILL_SOURCE_DIR=${PROJECT_SOURCE_DIR};BITMILL_TEST_SERVICES_DIR=${BITMILL_TEST_SERVICES_DIR}")
    foreach(variable IN LISTS ARG_ENVIRONMENT)
        string(APPEND environment ";${variable}")
    endforeach()
    set(properties_script ${CMAKE_CURRENT_BINARY_DIR}/${target}_${prefix}_properties.cmake)
    file(GENERATE OUTPUT ${properties_script} CONTENT
        "set_tests_properties(\${${target}_${prefix}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\"${fixtures_property} ENVIRONMENT \"${environment}\")\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${properties_script})
endfunction()
