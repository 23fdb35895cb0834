#include "store/core/cancel.h"

#include <signal.h>

namespace embstore {

Status CancelToken::Error() const {
  switch (signal()) {
    case 0: return Status::Cancelled("cancelled");
    case SIGINT: return Status::Cancelled("interrupted by SIGINT");
    case SIGTERM: return Status::Cancelled("interrupted by SIGTERM");
    default: return Status::Cancelled("interrupted by signal " + std::to_string(signal()));
  }
}

}  // namespace embstore
