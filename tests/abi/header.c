/* SPDX-License-Identifier: MIT */
/* The public header alone must compile cleanly, pedantically, in every
 * language mode we promise: C99, C11, C++17. */
#include "whsem.h"

int main(void)
{
    whsem_open_options o = {sizeof o, WHSEM_OPEN_EXACT_NAME, WHSEM_INFINITE, 0600, 0, 0};
    whsem_callback cb = 0;
    whsem_ticket_callback tcb = 0;
    (void)o;
    (void)cb;
    (void)tcb;
    return (int)(whsem_version() >> 16) == WHSEM_VERSION_MAJOR ? 0 : 1;
}
