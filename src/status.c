/* SPDX-License-Identifier: MIT */
/*
 * Versions and status names: the same on every platform (compiled into
 * the Linux library and whsem.dll alike).
 */
#include "common.h"

WHSEM_API uint32_t WHSEM_CALL whsem_version(void) { return WHSEM_VERSION; }

WHSEM_API const char *WHSEM_CALL whsem_version_string(void)
{
#define WHSEM_STR2(x) #x
#define WHSEM_STR(x) WHSEM_STR2(x)
    return WHSEM_STR(WHSEM_VERSION_MAJOR) "." WHSEM_STR(WHSEM_VERSION_MINOR) "." WHSEM_STR(
        WHSEM_VERSION_PATCH);
}

WHSEM_API const char *WHSEM_CALL whsem_status_name(whsem_status status)
{
    switch (status) {
    case WHSEM_OK: return "WHSEM_OK";
    case WHSEM_TIMEOUT: return "WHSEM_TIMEOUT";
    case WHSEM_PENDING: return "WHSEM_PENDING";
    case WHSEM_CANCELED: return "WHSEM_CANCELED";
    case WHSEM_E_INVALID_ARGUMENT: return "WHSEM_E_INVALID_ARGUMENT";
    case WHSEM_E_INVALID_HANDLE: return "WHSEM_E_INVALID_HANDLE";
    case WHSEM_E_INVALID_NAME: return "WHSEM_E_INVALID_NAME";
    case WHSEM_E_MAX_COUNT_MISMATCH: return "WHSEM_E_MAX_COUNT_MISMATCH";
    case WHSEM_E_ACCESS_DENIED: return "WHSEM_E_ACCESS_DENIED";
    case WHSEM_E_CORRUPT: return "WHSEM_E_CORRUPT";
    case WHSEM_E_INCOMPATIBLE: return "WHSEM_E_INCOMPATIBLE";
    case WHSEM_E_LIMIT: return "WHSEM_E_LIMIT";
    case WHSEM_E_NO_MEMORY: return "WHSEM_E_NO_MEMORY";
    case WHSEM_E_WRONG_PROCESS: return "WHSEM_E_WRONG_PROCESS";
    case WHSEM_E_OS: return "WHSEM_E_OS";
    case WHSEM_E_BUSY: return "WHSEM_E_BUSY";
    case WHSEM_E_NOT_FOUND: return "WHSEM_E_NOT_FOUND";
    case WHSEM_E_UNSUPPORTED: return "WHSEM_E_UNSUPPORTED";
    case WHSEM_E_TICKET_LOST: return "WHSEM_E_TICKET_LOST";
    case WHSEM_E_UNAVAILABLE: return "WHSEM_E_UNAVAILABLE";
    default: return "WHSEM_UNKNOWN_STATUS";
    }
}
