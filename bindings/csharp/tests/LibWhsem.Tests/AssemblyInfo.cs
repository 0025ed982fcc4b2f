// SPDX-License-Identifier: MIT
// libwhsem is Linux-only; so are these tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
