// Entry point of the PostgreSQL test binaries. They compile the store and
// queue suites again, so they also contain the suites' backend-independent
// cases, which the SQLite binaries already run under the same names. The
// default filter keeps only the cases on the Postgres backend and the
// Postgres* suites, so CTest registers each name once. A --gtest_filter
// argument, which CTest passes for each case, replaces the default.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
    ::testing::GTEST_FLAG(filter) = "*/Postgres:Postgres*";
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
