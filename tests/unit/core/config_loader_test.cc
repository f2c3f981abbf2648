// Checks the precedence of config file, environment and flags, and that
// bad values are rejected with the setting's name.
#include "core/config_loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace bitmill {
namespace {

class ConfigLoaderTest : public ::testing::Test {
protected:
    void TearDown() override {
        unsetenv("BITMILL_WORKERS");
        unsetenv("BITMILL_CONFIG");
        unsetenv("BITMILL_TASK_MEMORY_LIMIT_MB");
    }
};

TEST_F(ConfigLoaderTest, DefaultsApplyWithoutInput) {
    std::vector<std::string> positional;
    auto config = loadConfig({}, &positional);
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->listen, "127.0.0.1:8080");
    EXPECT_EQ(config->delivery_listen, "127.0.0.1:8081");
    EXPECT_EQ(config->limits.max_image_pixels, 100'000'000);
}

TEST_F(ConfigLoaderTest, FlagBeatsEnvironmentBeatsFile) {
    auto path = std::filesystem::temp_directory_path() / "bitmill-config-test.conf";
    {
        std::ofstream out(path);
        out << "# comment\nworkers = 3\nlisten = \"127.0.0.1:9000\"\n";
    }
    setenv("BITMILL_CONFIG", path.c_str(), 1);
    setenv("BITMILL_WORKERS", "5", 1);
    std::vector<std::string> positional;
    auto from_environment = loadConfig({}, &positional);
    ASSERT_TRUE(from_environment.ok()) << from_environment.error().message();
    EXPECT_EQ(from_environment->workers, 5);
    EXPECT_EQ(from_environment->listen, "127.0.0.1:9000");

    auto from_flag = loadConfig({"--workers", "7", "--data-dir=/tmp/x", "extra"}, &positional);
    ASSERT_TRUE(from_flag.ok());
    EXPECT_EQ(from_flag->workers, 7);
    EXPECT_EQ(from_flag->data_dir, "/tmp/x");
    EXPECT_EQ(positional, std::vector<std::string>{"extra"});
    std::filesystem::remove(path);
}

TEST_F(ConfigLoaderTest, ConvertsMegabytesToBytes) {
    setenv("BITMILL_TASK_MEMORY_LIMIT_MB", "64", 1);
    std::vector<std::string> positional;
    auto config = loadConfig({}, &positional);
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->limits.task_memory_bytes, 64LL << 20);
}

TEST_F(ConfigLoaderTest, WorkersAcceptsAutoAndZero) {
    std::vector<std::string> positional;
    auto defaults = loadConfig({}, &positional);
    ASSERT_TRUE(defaults.ok());
    EXPECT_EQ(defaults->workers, -1);

    auto none = loadConfig({"--workers", "0"}, &positional);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->workers, 0);

    auto automatic = loadConfig({"--workers", "auto"}, &positional);
    ASSERT_TRUE(automatic.ok());
    EXPECT_EQ(automatic->workers, -1);

    auto negative = loadConfig({"--workers", "-2"}, &positional);
    ASSERT_FALSE(negative.ok());
    EXPECT_NE(negative.error().message().find("auto or a whole number"), std::string::npos);
}

TEST_F(ConfigLoaderTest, RejectsBadValuesNamingTheSetting) {
    std::vector<std::string> positional;
    auto bad_number = loadConfig({"--workers", "many"}, &positional);
    ASSERT_FALSE(bad_number.ok());
    EXPECT_NE(bad_number.error().message().find("workers"), std::string::npos);
    EXPECT_NE(bad_number.error().message().find("'many'"), std::string::npos);

    auto unknown = loadConfig({"--colour", "blue"}, &positional);
    ASSERT_FALSE(unknown.ok());
    EXPECT_NE(unknown.error().message().find("--colour"), std::string::npos);

    auto bad_mode = loadConfig({"--default-response-mode", "xml"}, &positional);
    ASSERT_FALSE(bad_mode.ok());
    EXPECT_NE(bad_mode.error().message().find("bare, envelope"), std::string::npos);

    auto missing_value = loadConfig({"--listen"}, &positional);
    EXPECT_FALSE(missing_value.ok());
}

}  // namespace
}  // namespace bitmill
