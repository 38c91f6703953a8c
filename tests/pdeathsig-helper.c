/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A parent that dies without cleaning up: starts a client, prints the proxy's pid, and waits
 * to be killed. test-faults.c checks that the proxy does not outlive it.
 */

#include "cimgproxy-private.h"

#include <stdio.h>
#include <unistd.h>

int
main (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);

  if (client == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  printf ("%d\n", _cimg_proxy_client_get_pid (client));
  fflush (stdout);
  for (;;)
    pause ();
}
