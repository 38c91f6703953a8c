/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The yardstick of the benchmarks: a client of `skopeo experimental-image-proxy` written
 * straight against the protocol, with libc alone, that does the least any client must do.
 * No JSON library, no threads, no timeouts, no checks beyond the transfer verdict: what it
 * costs is what talking to skopeo costs, and the library is measured against it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct
{
  pid_t pid;
  int sock;
} MinimalProxy;

#define MINIMAL_MAX_BLOBS 16

typedef struct
{
  const char *digest;
  int64_t size;
} MinimalBlob;

/* Each returns 0 on success, or -1 after printing what failed on stderr. */
int minimal_proxy_start (MinimalProxy *proxy, const char *skopeo);
int minimal_proxy_open_image (MinimalProxy *proxy, const char *reference, int64_t *out_image);
int minimal_proxy_read_blob (MinimalProxy *proxy,
                             int64_t image,
                             const MinimalBlob *blob,
                             char *buffer,
                             size_t buffer_size);
int minimal_proxy_read_blobs_concurrently (MinimalProxy *proxy,
                                           int64_t image,
                                           const MinimalBlob *blobs,
                                           size_t n_blobs,
                                           char *buffer,
                                           size_t buffer_size);
int minimal_proxy_get_manifest (MinimalProxy *proxy, int64_t image, size_t *out_size);
/* Waits for skopeo to exit; out_usage, if not NULL, receives the CPU time it used. */
void minimal_proxy_stop (MinimalProxy *proxy, struct rusage *out_usage);
