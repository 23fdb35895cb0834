// The embstore release, recorded in the metadata of every table it writes
// and printed by `embstore --version`.

#ifndef EMBSTORE_STORE_CORE_VERSION_H_
#define EMBSTORE_STORE_CORE_VERSION_H_

namespace embstore {

inline constexpr const char* kEmbstoreVersion = "0.1.0";

}  // namespace embstore

#endif  // EMBSTORE_STORE_CORE_VERSION_H_
