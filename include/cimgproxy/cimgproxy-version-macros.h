/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <glib.h>

/* Every public declaration carries one of these; with the library built with hidden
 * visibility, they are what makes a symbol exported. */
#define _CIMG_PROXY_EXTERN __attribute__ ((visibility ("default"))) extern

#define CIMG_PROXY_AVAILABLE_IN_ALL _CIMG_PROXY_EXTERN
#define CIMG_PROXY_AVAILABLE_IN_1_0 _CIMG_PROXY_EXTERN
