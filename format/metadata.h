// The metadata section (FORMAT.md, "Metadata"): provenance as a bounded list
// of key/value byte strings, keys sorted and unique, so the same pairs always
// encode to the same bytes.
//
// Pure functions; a Metadata is a plain value (one writer at a time).

#ifndef EMBSTORE_FORMAT_METADATA_H_
#define EMBSTORE_FORMAT_METADATA_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "format/status.h"

namespace embstore {

// Ordered by key (byte order), which is also the on-disk order.
using Metadata = std::map<std::string, std::string>;

// Bytes from a file made safe to show on a terminal: control characters
// (C0, DEL, C1) and bytes that are not valid UTF-8 become \xNN.
std::string EscapeForDisplay(const std::string& bytes);
// The same for text of several lines (a message that lists things): each
// line escaped, the line breaks kept.
std::string EscapeLinesForDisplay(const std::string& text);

// Checks one key against FORMAT.md's rule: 1-255 bytes of [a-z0-9._-].
Status ValidateMetadataKey(const std::string& key);

// Encodes pairs; fails if a key is invalid or the result would exceed
// kMaxMetadataSize bytes or kMaxMetadataEntries entries.
Result<std::string> EncodeMetadata(const Metadata& metadata);

// Decodes exactly `bytes`; every length is checked against what remains
// before anything is read or allocated.
Result<Metadata> DecodeMetadata(std::span<const uint8_t> bytes);

}  // namespace embstore

#endif  // EMBSTORE_FORMAT_METADATA_H_
