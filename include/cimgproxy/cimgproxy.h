/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#define __CIMG_PROXY_H_INSIDE__

#include <cimgproxy/cimgproxy-version-macros.h>
#include <cimgproxy/cimgproxy-version.h>
#include <cimgproxy/cimgproxy-enum-types.h>
#include <cimgproxy/cimgproxy-error.h>
#include <cimgproxy/cimgproxy-layer-info.h>
#include <cimgproxy/cimgproxy-blob-stream.h>
#include <cimgproxy/cimgproxy-image.h>
#include <cimgproxy/cimgproxy-client.h>
#include <cimgproxy/cimgproxy-puller.h>

#undef __CIMG_PROXY_H_INSIDE__
