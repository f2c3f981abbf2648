# Finds the system libraries bitmill builds against (Debian 12 packages,
# installed by scripts/install-deps.sh) and exposes them as imported targets.

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)

pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET
    libavformat libavcodec libavfilter libavutil libswscale libswresample)
pkg_check_modules(VIPS REQUIRED IMPORTED_TARGET vips-cpp>=8.12)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

if(BITMILL_TESTS)
    find_package(GTest REQUIRED)
    include(GoogleTest)
endif()
