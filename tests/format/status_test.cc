#include "format/status.h"

#include <gtest/gtest.h>

#include <memory>

namespace embstore {
namespace status_test {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  EMB_ASSIGN_OR_RETURN(int h, Half(x));
  EMB_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  EMB_RETURN_IF_ERROR(Half(x).status());
  return Status::OK();
}

TEST(StatusTest, CodesMessagesAndContext) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  Status s = Status::Corruption("bad magic");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.ToString(), "corruption: bad magic");
  Status c = s.WithContext("t.emb");
  EXPECT_EQ(c.message(), "t.emb: bad magic");
  EXPECT_EQ(c.code(), Status::Code::kCorruption);
  EXPECT_TRUE(Status::NotSupported("x").IsNotSupported());
  EXPECT_TRUE(Status::OutOfRange("x").IsOutOfRange());
  EXPECT_TRUE(Status::IOError("x").IsIOError());
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "3 is odd");
  EXPECT_EQ(Quarter(7).status().message(), "7 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_TRUE(CheckEven(5).IsInvalidArgument());
  Result<std::unique_ptr<int>> moved = std::make_unique<int>(5);  // move-only values work
  EXPECT_EQ(*std::move(moved).value(), 5);
}

}  // namespace status_test
}  // namespace embstore
