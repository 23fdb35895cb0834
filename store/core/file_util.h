// Small helpers every piece of store/ that touches the file system shares:
// errors that name the path and spell out the cause, and how a file that is
// not a regular file is described and refused.
//
// Stateless; safe from any thread.

#ifndef EMBSTORE_STORE_CORE_FILE_UTIL_H_
#define EMBSTORE_STORE_CORE_FILE_UTIL_H_

#include <cstdint>
#include <string>

#include "format/status.h"

namespace embstore {

// An I/O error naming the path, from errno, with "no space left on device"
// and the file-size limit spelled out.
Status IoErrorFromErrno(const std::string& path, const std::string& what);

// True when something exists at path (an output that replacing must be
// asked for: -f on the command line, force=True in Python).
bool Exists(const std::string& path);

// The folder part of a path as written ("." for a bare name, "/" for a
// file at the root), and the name after its last '/'.
std::string FolderOf(const std::string& path);
std::string NameOf(const std::string& path);

// What a file of this st_mode is, for messages: "a FIFO", "a character
// device", "a folder", "a regular file".
std::string FileTypeText(uint32_t st_mode);

// The error for a path whose file is not a regular file: embstore reads
// tables only from regular files (a FIFO would block, a device has no
// size) and replaces only regular files (never a device or a FIFO).
Status NotRegularFile(const std::string& path, uint32_t st_mode);

// The error for an output path holding something other than a regular file
// (a device such as /dev/null, a FIFO, a folder), which embstore never
// replaces.
Status NotRegularDestination(const std::string& path, uint32_t st_mode);

// Checks an output path before any work: an error (as above) if something
// is there, through symlinks, that is not a regular file; OK if nothing is
// there or a regular file is (whether it may be replaced is the caller's
// question).
Status CheckOutputIsFile(const std::string& path);

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_FILE_UTIL_H_
