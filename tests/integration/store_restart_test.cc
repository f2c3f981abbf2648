// A task the store accepted is still there after the process stops, both
// after a clean close and after the process is killed with SIGKILL without
// closing anything.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "db/store.h"
#include "store_backends.h"

namespace bitmill::integration {
namespace {

constexpr int64_t kCreated = 1'700'000'000'000;

class StoreRestartTest : public ::testing::TestWithParam<StoreBackend> {
protected:
    TempFolder folder_;
};

TEST_P(StoreRestartTest, TaskSurvivesReopen) {
    std::string project_id;
    domain::TaskRecord task;
    {
        auto store = GetParam().open(folder_.string());
        ASSERT_TRUE(store.ok()) << store.error().toLogString();
        auto project = (*store)->ensureDefaultProject();
        ASSERT_TRUE(project.ok());
        project_id = project->id;
        task = makeTask(project_id, kCreated);
        ASSERT_TRUE((*store)->insertTask(task).ok());
    }

    auto reopened = GetParam().open(folder_.string());
    ASSERT_TRUE(reopened.ok()) << reopened.error().toLogString();
    auto project = (*reopened)->ensureDefaultProject();
    ASSERT_TRUE(project.ok());
    EXPECT_EQ(project->id, project_id);
    auto stored = (*reopened)->getTask(project_id, task.id);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(stored->status, domain::TaskStatus::Pending);
    EXPECT_EQ(stored->options, task.options);
}

TEST_P(StoreRestartTest, TaskSurvivesKill) {
    // The child writes through its own store and pipes back the ids once
    // insertTask has returned, then kills itself before any destructor runs.
    int ids_pipe[2];
    ASSERT_EQ(pipe(ids_pipe), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(ids_pipe[0]);
        auto store = GetParam().open(folder_.string());
        if (!store.ok()) {
            _exit(2);
        }
        auto project = (*store)->ensureDefaultProject();
        if (!project.ok()) {
            _exit(3);
        }
        domain::TaskRecord task = makeTask(project->id, kCreated);
        if (!(*store)->insertTask(task).ok()) {
            _exit(4);
        }
        std::string ids = project->id + " " + task.id;
        if (write(ids_pipe[1], ids.data(), ids.size()) != static_cast<ssize_t>(ids.size())) {
            _exit(5);
        }
        raise(SIGKILL);
        _exit(6);
    }

    close(ids_pipe[1]);
    std::string ids;
    char buffer[256];
    ssize_t got = 0;
    while ((got = read(ids_pipe[0], buffer, sizeof(buffer))) > 0) {
        ids.append(buffer, static_cast<size_t>(got));
    }
    close(ids_pipe[0]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);

    size_t space = ids.find(' ');
    ASSERT_NE(space, std::string::npos) << "ids from child: '" << ids << "'";
    std::string project_id = ids.substr(0, space);
    std::string task_id = ids.substr(space + 1);

    auto reopened = GetParam().open(folder_.string());
    ASSERT_TRUE(reopened.ok()) << reopened.error().toLogString();
    auto stored = (*reopened)->getTask(project_id, task_id);
    ASSERT_TRUE(stored.ok()) << stored.error().toLogString();
    EXPECT_EQ(stored->status, domain::TaskStatus::Pending);
    EXPECT_EQ(stored->created_ms, kCreated);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreRestartTest, ::testing::ValuesIn(storeBackends()),
                         BackendName());

}  // namespace
}  // namespace bitmill::integration
