/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "minimal-reader.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* skopeo's replies here are a few hundred bytes; one SEQPACKET message is one reply. */
#define REPLY_MAX 65536

typedef struct
{
  char text[REPLY_MAX];
  int64_t value;
  uint32_t pipe_id;
  int fd;
} Reply;

static int
fail (const char *what, const char *detail)
{
  fprintf (stderr, "minimal reader: %s: %s\n", what, detail);
  return -1;
}

static int64_t
number_after (const char *text, const char *key)
{
  const char *at = strstr (text, key);

  return at != NULL ? strtoll (at + strlen (key), NULL, 10) : -1;
}

/* Sends one request and waits for its reply, which may carry one fd. */
static int
call (MinimalProxy *proxy, Reply *reply, const char *format, ...)
{
  char request[1024];
  char control[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { reply->text, sizeof reply->text - 1 };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  va_list args;
  ssize_t n;
  int length;

  va_start (args, format);
  length = vsnprintf (request, sizeof request, format, args);
  va_end (args);
  if (send (proxy->sock, request, (size_t) length, MSG_NOSIGNAL) != length)
    return fail ("send", strerror (errno));

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  do
    n = recvmsg (proxy->sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return fail ("recvmsg", n == 0 ? "skopeo went away" : strerror (errno));
  reply->text[n] = '\0';

  reply->fd = -1;
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
      memcpy (&reply->fd, CMSG_DATA (cmsg), sizeof reply->fd);

  if (strstr (reply->text, "\"success\":true") == NULL)
    {
      if (reply->fd >= 0)
        close (reply->fd);
      return fail ("request failed", reply->text);
    }
  reply->value = number_after (reply->text, "\"value\":");
  reply->pipe_id = (uint32_t) number_after (reply->text, "\"pipeid\":");
  return 0;
}

int
minimal_proxy_start (MinimalProxy *proxy, const char *skopeo)
{
  Reply reply;
  int sv[2];

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    return fail ("socketpair", strerror (errno));
  proxy->pid = fork ();
  if (proxy->pid < 0)
    return fail ("fork", strerror (errno));
  if (proxy->pid == 0)
    {
      /* dup2 clears CLOEXEC on the copy, so only fd 0 survives the exec. */
      dup2 (sv[1], 0);
      execlp (skopeo, skopeo, "experimental-image-proxy", "--sockfd", "0", (char *) NULL);
      _exit (127);
    }
  close (sv[1]);
  proxy->sock = sv[0];
  return call (proxy, &reply, "{\"method\":\"Initialize\",\"args\":[]}");
}

int
minimal_proxy_open_image (MinimalProxy *proxy, const char *reference, int64_t *out_image)
{
  Reply reply;

  if (call (proxy, &reply, "{\"method\":\"OpenImage\",\"args\":[\"%s\"]}", reference) < 0)
    return -1;
  *out_image = reply.value;
  return 0;
}

static int
finish_pipe (MinimalProxy *proxy, uint32_t pipe_id)
{
  Reply reply;

  return call (proxy, &reply, "{\"method\":\"FinishPipe\",\"args\":[%" PRIu32 "]}", pipe_id);
}

static int
get_blob (MinimalProxy *proxy,
          int64_t image,
          const MinimalBlob *blob,
          struct pollfd *pfd,
          uint32_t *pipe_id)
{
  Reply reply;

  if (call (proxy, &reply, "{\"method\":\"GetBlob\",\"args\":[%" PRId64 ",\"%s\",%" PRId64 "]}",
            image, blob->digest, blob->size) < 0)
    return -1;
  *pfd = (struct pollfd){ reply.fd, POLLIN, 0 };
  *pipe_id = reply.pipe_id;
  return 0;
}

/* Reads at most what is left of a blob, in reads of at most buffer_size bytes. */
static ssize_t
read_some (int fd, int64_t left, char *buffer, size_t buffer_size)
{
  ssize_t n = read (fd, buffer, (uint64_t) left < buffer_size ? (size_t) left : buffer_size);

  if (n <= 0)
    fail ("read", n == 0 ? "pipe ended early" : strerror (errno));
  return n;
}

int
minimal_proxy_read_blob (MinimalProxy *proxy,
                         int64_t image,
                         const MinimalBlob *blob,
                         char *buffer,
                         size_t buffer_size)
{
  struct pollfd pfd;
  uint32_t pipe_id;
  int64_t left = blob->size;
  int ret;

  if (get_blob (proxy, image, blob, &pfd, &pipe_id) < 0)
    return -1;
  while (left > 0)
    {
      ssize_t n = read_some (pfd.fd, left, buffer, buffer_size);

      if (n <= 0)
        break;
      left -= n;
    }
  ret = left == 0 ? finish_pipe (proxy, pipe_id) : -1;
  close (pfd.fd);
  return ret;
}

/* Opens every blob, then reads them all from one poll(2) loop; a pipe's FinishPipe goes
 * out once its last byte is in, and is answered at once since skopeo's writer is done. */
int
minimal_proxy_read_blobs_concurrently (MinimalProxy *proxy,
                                       int64_t image,
                                       const MinimalBlob *blobs,
                                       size_t n_blobs,
                                       char *buffer,
                                       size_t buffer_size)
{
  struct pollfd fds[MINIMAL_MAX_BLOBS];
  uint32_t pipe_ids[MINIMAL_MAX_BLOBS];
  int64_t left[MINIMAL_MAX_BLOBS];
  size_t open_blobs = 0;
  int ret = 0;

  if (n_blobs > MINIMAL_MAX_BLOBS)
    return fail ("read", "too many blobs");
  for (; ret == 0 && open_blobs < n_blobs; open_blobs++)
    {
      left[open_blobs] = blobs[open_blobs].size;
      fds[open_blobs].fd = -1;
      ret = get_blob (proxy, image, &blobs[open_blobs], &fds[open_blobs], &pipe_ids[open_blobs]);
    }

  for (size_t reading = open_blobs; ret == 0 && reading > 0;)
    {
      if (poll (fds, n_blobs, -1) < 0)
        ret = fail ("poll", strerror (errno));
      for (size_t i = 0; ret == 0 && i < n_blobs; i++)
        {
          ssize_t n;

          if (fds[i].fd < 0 || fds[i].revents == 0)
            continue;
          n = read_some (fds[i].fd, left[i], buffer, buffer_size);
          if (n <= 0)
            ret = -1;
          else if ((left[i] -= n) == 0)
            {
              ret = finish_pipe (proxy, pipe_ids[i]);
              /* A negative fd drops out of poll(2). */
              close (fds[i].fd);
              fds[i].fd = -1;
              reading--;
            }
        }
    }

  for (size_t i = 0; i < open_blobs; i++)
    if (fds[i].fd >= 0)
      close (fds[i].fd);
  return ret;
}

/* The cheapest request with a pipe: small enough that skopeo's writer is done before
 * FinishPipe, so the reply comes first and the bytes after it. */
int
minimal_proxy_get_manifest (MinimalProxy *proxy, int64_t image, size_t *out_size)
{
  Reply reply;
  char buffer[65536];
  ssize_t n;

  if (call (proxy, &reply, "{\"method\":\"GetManifest\",\"args\":[%" PRId64 "]}", image) < 0)
    return -1;
  if (finish_pipe (proxy, reply.pipe_id) < 0)
    {
      close (reply.fd);
      return -1;
    }
  *out_size = 0;
  while ((n = read (reply.fd, buffer, sizeof buffer)) > 0)
    *out_size += (size_t) n;
  close (reply.fd);
  return n == 0 ? 0 : fail ("read manifest", strerror (errno));
}

void
minimal_proxy_stop (MinimalProxy *proxy, struct rusage *out_usage)
{
  struct rusage usage;
  int status;

  /* skopeo exits when its socket closes. */
  close (proxy->sock);
  while (wait4 (proxy->pid, &status, 0, out_usage != NULL ? out_usage : &usage) < 0 &&
         errno == EINTR)
    ;
}
