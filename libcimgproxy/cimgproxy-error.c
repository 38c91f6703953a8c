/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include "cimgproxy-private.h"

/**
 * CImgProxyError:
 * @CIMG_PROXY_ERROR_SPAWN_FAILED: the skopeo program could not be started: it is not
 *   installed, not in `PATH`, or not executable
 * @CIMG_PROXY_ERROR_PROXY_EXITED: the proxy process exited or was killed; the message gives
 *   its exit status and the last lines it wrote to stderr
 * @CIMG_PROXY_ERROR_PROTOCOL: the proxy sent something the protocol does not allow; the client
 *   stops using it
 * @CIMG_PROXY_ERROR_UNSUPPORTED_VERSION: the proxy speaks a protocol version this library
 *   does not support; install a different skopeo
 * @CIMG_PROXY_ERROR_REQUEST_FAILED: the proxy could not carry out a request, for example
 *   because a registry refused it or a file is missing; the message is skopeo's
 * @CIMG_PROXY_ERROR_VERIFICATION_FAILED: a blob did not match the digest or size it was
 *   requested with; its data must not be used
 * @CIMG_PROXY_ERROR_CLOSED: the client or image was closed, or an earlier failure made the
 *   proxy unusable; the message says which
 * @CIMG_PROXY_ERROR_NOT_FOUND: the image does not exist in the place the reference points to
 * @CIMG_PROXY_ERROR_INVALID_REFERENCE: the reference is not of the form `TRANSPORT:NAME` with
 *   a transport skopeo knows, or its name part is malformed
 * @CIMG_PROXY_ERROR_AUTHENTICATION_FAILED: the registry refused the credentials, or wants some
 *   and got none; see [property@CImgProxy.Client:authfile]
 * @CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED: the signature policy asks for more than
 *   `insecureAcceptAnything` for the image, and the running skopeo is too old to check it;
 *   see [method@CImgProxy.Client.get_enforces_policy]
 *
 * Errors of the %CIMG_PROXY_ERROR domain. Failures of plain I/O, cancellation and calls that
 * the running skopeo is too old for are reported in the %G_IO_ERROR domain instead
 * (%G_IO_ERROR_CANCELLED, %G_IO_ERROR_NOT_SUPPORTED, ...).
 *
 * Since: 1.0
 */

/**
 * CIMG_PROXY_ERROR:
 *
 * The error domain of libcimgproxy; its codes are those of [enum@CImgProxy.Error].
 *
 * Since: 1.0
 */

/**
 * cimg_proxy_error_quark:
 *
 * The quark behind %CIMG_PROXY_ERROR.
 *
 * Returns: the error domain quark
 *
 * Since: 1.0
 */
GQuark
cimg_proxy_error_quark (void)
{
  /* Spelled out rather than with G_DEFINE_QUARK, whose dashed first argument clang-format
   * would split into "cimg - proxy - ...". */
  return g_quark_from_static_string ("cimg-proxy-error-quark");
}
