// Checks id shape and that ids do not repeat.
#include "core/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace bitmill {
namespace {

TEST(IdsTest, NewIdHasPrefixAndSixteenBase62Characters) {
    std::string id = newId("task_");
    ASSERT_EQ(id.size(), 21u);
    EXPECT_EQ(id.substr(0, 5), "task_");
    for (char c : id.substr(5)) {
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
    }
}

TEST(IdsTest, NewIdsAreDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        EXPECT_TRUE(seen.insert(newId("file_")).second);
    }
}

}  // namespace
}  // namespace bitmill
