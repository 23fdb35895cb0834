// Named shared-memory tables: a table placed in RAM once, verified, for any
// number of processes to map read-only, when it should not live in a file
// (a .embz inflated once for all workers, a table on a machine whose disk
// is slow or absent).
//
// A segment holds exactly a .emb's bytes, so TableReader serves it zero-copy
// like a file (OpenSharedTable). It is a POSIX shared-memory object:
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
//
// Ownership: anyone may create a name in /dev/shm, so a reader opens a
// segment only when it belongs to the reading user, to root, or to a user
// the reader names as trusted (OpenSharedTable): another user who
// took the name first cannot serve their rows to our workers.

#ifndef EMBSTORE_STORE_INTEROP_SHARED_TABLE_H_
#define EMBSTORE_STORE_INTEROP_SHARED_TABLE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/status.h"
#include "format/table_format.h"
#include "store/core/table_reader.h"

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

// "uid 1001 (alice)", or "uid 1001" for a uid with no user name.
std::string UserText(uint32_t uid);
// A user as --trust-owner takes one: a name ("alice") or a uid ("1001").
Result<uint32_t> ParseOwner(const std::string& user);
// True for this process's user, root, and the trusted owners: the users
// whose shared tables are read.
bool OwnerTrusted(uint32_t uid, std::span<const uint32_t> trusted_owners);

struct ShareOptions {
  // Permission bits (octal 0600: owner only). Write bits are dropped: a
  // published segment is never written. Must include owner read (0400).
  uint32_t mode = 0600;
  bool replace = false;  // replace a segment of the same name (else an already-exists error)
  unsigned threads = 0;  // 0: all cores
  // A shm: source owned by one of these users (uids) is read too (see
  // OpenSharedTable).
  std::vector<uint32_t> trusted_owners;
  // (bytes done, bytes total), from the calling thread, about ten times a second.
  std::function<void(uint64_t, uint64_t)> progress;
  // Stops the work early (store/core/cancel.h): nothing is shared, and a
  // segment that was to be replaced stays as it was.
  const CancelToken* cancel = nullptr;
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

// Opens the shared-memory table `name` with the checks TableReader::Open
// makes of a file, read-only, zero-copy. A name that does not exist is a
// not-found error; an invalid one (a '/', "..") an invalid-argument error.
// A segment owned by anyone but this process's user, root or one of
// trusted_owners (uids) is refused: another user may have taken the name
// first. A symlink at the name is not followed.
Result<TableReader> OpenSharedTable(const std::string& name, std::span<const uint32_t> trusted_owners = {});

// Every segment in SharedDir(), by name; ones that do not open as a table
// are listed with the reason.
Result<std::vector<SharedSegmentInfo>> ListShared();

}  // namespace embstore

#endif  // EMBSTORE_STORE_INTEROP_SHARED_TABLE_H_
