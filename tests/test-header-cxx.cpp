/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same outside program as test-header.c, compiled as C++: the public headers must work
 * there too.
 */

#include "test-header.c"
