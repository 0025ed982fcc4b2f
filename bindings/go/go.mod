// SPDX-License-Identifier: MIT
module libwhsem/go/whsem

go 1.22
