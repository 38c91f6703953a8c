/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GConverter that decompresses zstd, as GZlibDecompressor does gzip. libzstd's streaming
 * decoder goes on from one frame to the next and skips skippable frames by itself, which is
 * what zstd:chunked layers (many frames, plus skippable ones holding the table of contents)
 * need; a decoder that stopped after the first frame would cut them short.
 */

#include "config.h"

#include <zstd.h>

#include "cimgproxy-private.h"

struct _CImgProxyZstdDecompressor
{
  GObject parent_instance;

  ZSTD_DCtx *context;
  /* What the last call that moved data left to do: 0 once a frame is complete and nothing
   * is buffered. */
  size_t pending;
};

static void cimg_proxy_zstd_decompressor_converter_iface_init (GConverterIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (
  CImgProxyZstdDecompressor,
  _cimg_proxy_zstd_decompressor,
  G_TYPE_OBJECT,
  G_IMPLEMENT_INTERFACE (G_TYPE_CONVERTER, cimg_proxy_zstd_decompressor_converter_iface_init))

static void
cimg_proxy_zstd_decompressor_finalize (GObject *object)
{
  CImgProxyZstdDecompressor *self = (CImgProxyZstdDecompressor *) object;

  ZSTD_freeDCtx (self->context);

  G_OBJECT_CLASS (_cimg_proxy_zstd_decompressor_parent_class)->finalize (object);
}

static void
_cimg_proxy_zstd_decompressor_class_init (CImgProxyZstdDecompressorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cimg_proxy_zstd_decompressor_finalize;
}

static void
_cimg_proxy_zstd_decompressor_init (CImgProxyZstdDecompressor *self)
{
  self->context = ZSTD_createDCtx ();
}

static GConverterResult
cimg_proxy_zstd_decompressor_convert (GConverter *converter,
                                      const void *inbuf,
                                      gsize inbuf_size,
                                      void *outbuf,
                                      gsize outbuf_size,
                                      GConverterFlags flags,
                                      gsize *bytes_read,
                                      gsize *bytes_written,
                                      GError **error)
{
  CImgProxyZstdDecompressor *self = (CImgProxyZstdDecompressor *) converter;
  ZSTD_inBuffer input = { inbuf, inbuf_size, 0 };
  ZSTD_outBuffer output = { outbuf, outbuf_size, 0 };

  size_t hint = ZSTD_decompressStream (self->context, &output, &input);

  if (ZSTD_isError (hint))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Invalid zstd data: %s",
                   ZSTD_getErrorName (hint));
      return G_CONVERTER_ERROR;
    }
  /* Called with nothing to do at a frame boundary, libzstd asks for the next frame's header;
   * only a call that moved something says where the data stands. */
  if (input.pos > 0 || output.pos > 0)
    self->pending = hint;
  *bytes_read = input.pos;
  *bytes_written = output.pos;

  if (input.pos == input.size && (flags & G_CONVERTER_INPUT_AT_END))
    {
      /* All input seen: done once the last frame is complete and its output all out, which
       * is what a return of 0 from ZSTD_decompressStream() means. */
      if (self->pending == 0)
        return G_CONVERTER_FINISHED;
      if (self->pending != 0 && output.pos == 0 && input.pos == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "The zstd data ends in the middle of a frame");
          return G_CONVERTER_ERROR;
        }
    }
  if (input.pos == 0 && output.pos == 0)
    {
      /* Nothing moved: either the caller's buffer is too small, or more input is needed. */
      if (output.size == 0)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "No room for output");
      else
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT, "Need more input");
      return G_CONVERTER_ERROR;
    }
  return G_CONVERTER_CONVERTED;
}

static void
cimg_proxy_zstd_decompressor_reset (GConverter *converter)
{
  CImgProxyZstdDecompressor *self = (CImgProxyZstdDecompressor *) converter;

  ZSTD_DCtx_reset (self->context, ZSTD_reset_session_only);
  self->pending = 0;
}

static void
cimg_proxy_zstd_decompressor_converter_iface_init (GConverterIface *iface)
{
  iface->convert = cimg_proxy_zstd_decompressor_convert;
  iface->reset = cimg_proxy_zstd_decompressor_reset;
}

GConverter *
_cimg_proxy_zstd_decompressor_new (void)
{
  return g_object_new (_cimg_proxy_zstd_decompressor_get_type (), NULL);
}
