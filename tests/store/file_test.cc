// The file core under misuse and races: destinations that are not regular
// files, outputs that appear while a writer works, names too long for the
// folder, temporary files of live and dead writers, and inputs that are not
// regular files (which must fail at once, never block).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "store/core/atomic_file.h"
#include "store/core/mapped_file.h"
#include "store/core/table_reader.h"
#include "store/core/table_writer.h"
#include "tests/test_util.h"

// A file system without RENAME_NOREPLACE (NFS, many FUSE ones) answers
// renameat2 with flags by EINVAL. While g_no_rename2 is set, this binary's
// renameat2 (which the library's calls reach before the C library's) does
// the same; otherwise it is the real one.
bool g_no_rename2 = false;
extern "C" int renameat2(int olddirfd, const char* oldpath, int newdirfd, const char* newpath,
                         unsigned int flags) noexcept {
  if (g_no_rename2 && flags != 0) {
    errno = EINVAL;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags));
}

namespace embstore {
namespace file_test {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

Status Publish(const std::string& path, const AtomicFileOptions& o, uint8_t byte = 7) {
  EMB_ASSIGN_OR_RETURN(auto f, AtomicFile::Create(path, 3, o));
  const uint8_t bytes[3] = {byte, byte, byte};
  EMB_RETURN_IF_ERROR(f->WriteAt(bytes, 3, 0));
  return f->Commit();
}

bool IsFifo(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

TEST(FileTest, AFifoOrDeviceAtTheDestinationIsNeverReplaced) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.File("fifo").c_str(), 0644), 0);
  std::filesystem::create_symlink(dir.File("fifo"), dir.File("link"));
  std::vector<std::string> targets = {dir.File("fifo"), dir.File("link")};
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::mknod(dir.File("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    targets.push_back(dir.File("null"));
  }
  for (const std::string& t : targets) {
    for (bool no_replace : {false, true}) {
      for (bool unnamed : {true, false}) {
        AtomicFileOptions o;
        o.sync = false;
        o.no_replace = no_replace;
        o.unnamed_temp = unnamed;
        Status st = Publish(t, o);
        ASSERT_FALSE(st.ok()) << t;
        if (!no_replace) {
          EXPECT_TRUE(st.IsIOError()) << st.ToString();
          EXPECT_NE(st.message().find("not a regular file"), std::string::npos) << st.ToString();
        }
      }
    }
    // A table writer refuses it too.
    auto w = TableWriter::Create(t, 2, 2);
    EXPECT_FALSE(w.ok()) << t;
  }
  EXPECT_TRUE(IsFifo(dir.File("fifo")));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.File("link")));
  if (root) {
    struct stat st;
    ASSERT_EQ(::stat(dir.File("null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  auto names = dir.List();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, root ? std::vector<std::string>({"fifo", "link", "null"}) : std::vector<std::string>({"fifo", "link"}));
}

TEST(FileTest, NoReplaceRefusesAFileThatAppearedDuringTheWrite) {
  for (bool unnamed : {true, false}) {
    TempDir dir;
    AtomicFileOptions o;
    o.sync = false;
    o.no_replace = true;
    o.unnamed_temp = unnamed;
    auto f = AtomicFile::Create(dir.File("out"), 3, o);
    ASSERT_OK(f.status());
    ASSERT_OK((*f)->WriteAt("new", 3, 0));
    WriteBytes(dir.File("out"), {'o', 'l', 'd'});  // another process got there first
    Status st = (*f)->Commit();
    EXPECT_TRUE(st.IsAlreadyExists()) << st.ToString();
    EXPECT_NE(st.message().find(dir.File("out")), std::string::npos) << st.ToString();
    EXPECT_EQ(ReadBytes(dir.File("out")), std::vector<uint8_t>({'o', 'l', 'd'}));
    EXPECT_EQ(dir.List(), std::vector<std::string>{"out"});  // no temporary left
    // And a taken name is refused at Create, before any work.
    EXPECT_TRUE(AtomicFile::Create(dir.File("out"), 3, o).status().IsAlreadyExists());
  }
}

TEST(FileTest, NoReplaceWorksWhereRenameCannotRefuseToReplace) {
  // Named temporary files are put in place with RENAME_NOREPLACE; where the
  // file system rejects the flag, with a hard link (which never replaces).
  TempDir dir;
  AtomicFileOptions o;
  o.sync = false;
  o.no_replace = true;
  o.unnamed_temp = false;
  g_no_rename2 = true;
  Status fresh = Publish(dir.File("new"), o, 1);
  auto f = AtomicFile::Create(dir.File("taken"), 3, o);
  WriteBytes(dir.File("taken"), {'o', 'l', 'd'});
  Status taken = f.ok() ? (*f)->Commit() : f.status();
  g_no_rename2 = false;
  EXPECT_OK(fresh);
  EXPECT_EQ(ReadBytes(dir.File("new")), std::vector<uint8_t>({1, 1, 1}));
  EXPECT_TRUE(taken.IsAlreadyExists()) << taken.ToString();
  EXPECT_EQ(ReadBytes(dir.File("taken")), std::vector<uint8_t>({'o', 'l', 'd'}));
  auto names = dir.List();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, std::vector<std::string>({"new", "taken"}));  // no temporary name left
}

TEST(FileTest, ASymlinkPlantedInAStickyFolderIsNotFollowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a symlink to another user";
  // /tmp-like: world-writable and sticky. Another user's symlink there must
  // not choose which of our files gets replaced; our own is followed.
  TempDir dir;
  const std::string shared = dir.File("shared");
  ASSERT_EQ(::mkdir(shared.c_str(), 01777), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  WriteBytes(dir.File("precious"), {'k', 'e', 'e', 'p'});
  const std::string planted = shared + "/t.emb", mine = shared + "/mine.emb";
  ASSERT_EQ(::symlink(dir.File("precious").c_str(), planted.c_str()), 0);
  ASSERT_EQ(::lchown(planted.c_str(), 65534, 65534), 0);
  // And a chain: our own link to the planted one.
  ASSERT_EQ(::symlink(planted.c_str(), dir.File("chain").c_str()), 0);
  for (const std::string& dst : {planted, dir.File("chain")}) {
    auto w = TableWriter::Create(dst, 2, 2);
    ASSERT_FALSE(w.ok()) << dst;
    EXPECT_NE(w.status().message().find("does not follow it"), std::string::npos) << w.status().ToString();
  }
  EXPECT_EQ(ReadBytes(dir.File("precious")), std::vector<uint8_t>({'k', 'e', 'e', 'p'}));
  ASSERT_EQ(::symlink(dir.File("target").c_str(), mine.c_str()), 0);
  WriteBytes(dir.File("target"), {1});
  AtomicFileOptions o;
  o.sync = false;
  ASSERT_OK(Publish(mine, o, 9));
  EXPECT_EQ(ReadBytes(dir.File("target")), std::vector<uint8_t>({9, 9, 9}));
}

TEST(FileTest, ANameTooLongForTheFolderFailsAtCreate) {
  TempDir dir;
  auto w = TableWriter::Create(dir.File(std::string(256, 'n')), 1000, 1000);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(w.status().IsInvalidArgument()) << w.status().ToString();
  EXPECT_NE(w.status().message().find("the name is 256 bytes"), std::string::npos) << w.status().ToString();
  EXPECT_TRUE(dir.List().empty());
}

// A child process that holds a named temporary file in `dir` until it is
// killed.
pid_t HoldTemporaryFile(const std::string& dir) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    AtomicFileOptions o;
    o.unnamed_temp = false;
    auto f = AtomicFile::Create(dir + "/held", 1, o);
    const char c = f.ok() ? 1 : 0;
    (void)!::write(ready[1], &c, 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c = 0;
  (void)!::read(ready[0], &c, 1);
  ::close(ready[0]);
  return c == 1 ? pid : -1;
}

std::vector<std::string> Temps(const TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& n : dir.List())
    if (n.rfind(kTempPrefix, 0) == 0) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(FileTest, TemporaryFilesAreRemovedOnlyWhenTheirWriterIsGone) {
  TempDir dir;
  const pid_t holder = HoldTemporaryFile(dir.path());
  ASSERT_GT(holder, 0);
  const auto held = Temps(dir);
  ASSERT_EQ(held.size(), 1u);
  // Stale: a temporary file no process holds (a killed writer's), and one
  // of the old "-PID-N" form, which is left alone (it is not locked).
  WriteBytes(dir.File(".embstore-tmp-0123456789abcdef"), {1});
  WriteBytes(dir.File(".embstore-tmp-99999999-0"), {1});
  AtomicFileOptions o;
  o.sync = false;
  ASSERT_OK(Publish(dir.File("a"), o));
  std::vector<std::string> want = {".embstore-tmp-99999999-0", held[0]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Temps(dir), want);
  // The writer dies: its file is stale now, and the next write removes it.
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ASSERT_OK(Publish(dir.File("a"), o));
  EXPECT_EQ(Temps(dir), std::vector<std::string>({".embstore-tmp-99999999-0"}));
}

TEST(FileTest, TemporaryFilesOfThisProcessAreNeverTakenForStale) {
  // Two writers in one process, one folder: the second's clean-up must not
  // touch the first's file (where locks are per process, as NFS's are, its
  // own lock would not keep it out).
  TempDir dir;
  AtomicFileOptions o;
  o.sync = false;
  o.unnamed_temp = false;
  auto first = AtomicFile::Create(dir.File("one"), 3, o);
  ASSERT_OK(first.status());
  ASSERT_OK(Publish(dir.File("two"), o));
  ASSERT_OK((*first)->WriteAt("abc", 3, 0));
  ASSERT_OK((*first)->Commit());
  EXPECT_EQ(ReadBytes(dir.File("one")), std::vector<uint8_t>({'a', 'b', 'c'}));
}

TEST(FileTest, InputsThatAreNotRegularFilesFailAtOnce) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.File("fifo").c_str(), 0644), 0);
  std::filesystem::create_symlink(dir.File("fifo"), dir.File("link"));
  for (const std::string& p : {dir.File("fifo"), dir.File("link")}) {
    const auto start = std::chrono::steady_clock::now();
    auto m = MappedFile::Open(p);  // would block forever in open() for a writer
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("is a FIFO, not a regular file"), std::string::npos) << m.status().ToString();
    EXPECT_TRUE(TableReader::Open(p).status().IsIOError());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  }
  auto folder = MappedFile::Open(dir.path());
  EXPECT_NE(folder.status().message().find("is a folder"), std::string::npos) << folder.status().ToString();
  // Where symlinks are not followed, one is refused.
  MapOptions no_follow;
  no_follow.follow_symlinks = false;
  WriteBytes(dir.File("file"), {1, 2, 3});
  std::filesystem::create_symlink(dir.File("file"), dir.File("to-file"));
  auto refused = MappedFile::Open(dir.File("to-file"), no_follow);
  EXPECT_NE(refused.status().message().find("symlink"), std::string::npos) << refused.status().ToString();
  auto direct = MappedFile::Open(dir.File("file"), no_follow);
  ASSERT_OK(direct.status());
  EXPECT_EQ(direct->size(), 3u);
  EXPECT_EQ(direct->owner_uid(), ::geteuid());
}

}  // namespace file_test
}  // namespace embstore
