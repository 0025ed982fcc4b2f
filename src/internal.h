/* SPDX-License-Identifier: MIT */
/*
 * Every module header at once, for async.c until it includes what it uses.
 *
 * Lock order (outer first): maps_mu -> the engine lock -> a cancel stripe
 * -> segment lock. The segment lock is never held across a blocking wait
 * or a callback.
 */
#ifndef WHSEM_INTERNAL_H
#define WHSEM_INTERNAL_H

#include "async.h"
#include "cancel.h"
#include "handles.h"
#include "mapping.h"
#include "process.h"
#include "recovery.h"
#include "seglock.h"

#endif
