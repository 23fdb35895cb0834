// Named shared-memory tables: a table placed in RAM once, verified, for any
// number of processes to map read-only, when it should not live in a file
// (a .embz inflated once for all workers, a table on a machine whose disk
// is slow or absent).
//
// A segment holds exactly a .emb's bytes, so TableReader serves it zero-copy
// like a file (TableReader::OpenShared). It is a POSIX shared-memory object:
// on Linux a file in /dev/shm named "embstore-NAME", which other programs
// reach as shm_open("/embstore-NAME") (e.g. Python's
// multiprocessing.shared_memory). EMBSTORE_SHM_DIR names another directory
// (tests use a small tmpfs to run out of space).
//
// Publication is atomic: ShareTable fills an unnamed file (O_TMPFILE) in
// that directory, verifies every checksum of what it wrote, and only then
// gives it its name; a reader never sees a half-filled segment, and a
// killed ShareTable leaves nothing. Replacing a segment (ShareOptions::
// replace) renames the new one over it: processes that mapped the old one
// keep reading it, whole, until they reopen. A segment lives until
// UnshareTable (or a reboot); processes that still map it keep it alive.
//
// Permissions: a segment never has write bits, so no process (root aside)
// can open it writable and corrupt it for the others; readers map it
// read-only. By default only its owner can read it (mode 0600, stored as
// 0400); ShareOptions::mode widens that explicitly.

#ifndef EMBSTORE_STORE_SHARED_TABLE_H_
#define EMBSTORE_STORE_SHARED_TABLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/status.h"
#include "format/table_format.h"

namespace embstore {

// Names are 1 to 200 characters of [A-Za-z0-9._-], not starting with '.':
// no '/', no "..", nothing that leaves the shared-memory namespace.
inline constexpr size_t kMaxSharedNameLength = 200;
Status ValidateSharedName(const std::string& name);

// The directory segments live in: $EMBSTORE_SHM_DIR, else /dev/shm.
std::string SharedDir();
// The file behind segment `name`. REQUIRES: ValidateSharedName(name).ok().
std::string SharedPath(const std::string& name);

// Permission bits as ls and chmod show them: "0400".
std::string OctalMode(uint32_t mode);

struct ShareOptions {
  // Permission bits (octal 0600: owner only). Write bits are dropped: a
  // published segment is never written. Must include owner read (0400).
  uint32_t mode = 0600;
  bool replace = false;  // replace a segment of the same name (else an already-exists error)
  unsigned threads = 0;  // 0: all cores
  // (bytes done, bytes total), from the calling thread, about ten times a second.
  std::function<void(uint64_t, uint64_t)> progress;
};

// Places the table in `source` (a .emb, a .embz, or "shm:NAME") in segment
// `name`. Out of space in the shared-memory directory is an I/O error
// naming it, reported before any row is copied, and leaves nothing.
Status ShareTable(const std::string& source, const std::string& name, const ShareOptions& options = {});

// Removes the segment's name. Processes that map it keep their mapping;
// the memory is freed when the last one unmaps it.
Status UnshareTable(const std::string& name);

struct SharedSegmentInfo {
  std::string name;
  uint64_t bytes = 0;
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0;
  bool valid = false;  // the header opens; rows, dim and error below
  uint64_t rows = 0, dim = 0;
  std::string error;  // why it does not open as a table (when !valid)
};

// Every segment in SharedDir(), by name; ones that do not open as a table
// are listed with the reason.
Result<std::vector<SharedSegmentInfo>> ListShared();

}  // namespace embstore

#endif  // EMBSTORE_STORE_SHARED_TABLE_H_
