// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The core's pure protocol functions, and version gating against the real skopeo.

#include "test-util.h"

#include "core/error.hpp"
#include "core/oci.hpp"
#include "core/proxy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

using namespace cimgproxy::core;

namespace
{

template <typename Body>
ErrorKind
error_kind_of (Body &&body)
{
  try
    {
      body ();
    }
  catch (const Error &error)
    {
      return error.kind ();
    }
  fail_msg ("expected an exception");
  return ErrorKind::Io;
}

void
test_version_parse (void **)
{
  auto version = Version::parse ("0.2.3");
  assert_true (version.has_value ());
  assert_int_equal (version->patch, 3);
  assert_true (version->at_least (kMinimumVersion));
  assert_false (Version::parse ("0.2.2")->at_least (kMinimumVersion));
  assert_true (Version::parse ("0.2.10")->at_least (Version{ 0, 2, 8 }));
  for (const char *bad : { "", "0.2", "0.2.3.4", "0.2.x", "v0.2.3", "0..3", "0.2.3 " })
    assert_false (Version::parse (bad).has_value ());
}

void
test_build_request (void **)
{
  std::string request =
    build_request (Method::GetBlob, { uint64_t{ 7 }, std::string ("sha256:ab"), uint64_t{ 1234 } });
  assert_string_equal (request.c_str (),
                       "{\"method\":\"GetBlob\",\"args\":[7,\"sha256:ab\",1234]}");
  assert_string_equal (build_request (Method::Initialize, {}).c_str (),
                       "{\"method\":\"Initialize\",\"args\":[]}");
  // Above 2^53 - 1 skopeo would refuse the number; it is not sent.
  assert_true (error_kind_of ([] {
                 build_request (Method::FinishPipe, { uint64_t{ 1 } << 60 });
               }) == ErrorKind::InvalidArgument);
}

std::vector<Fd>
make_fds (size_t count)
{
  std::vector<Fd> fds;
  for (size_t i = 0; i < count; i++)
    fds.emplace_back (open ("/dev/null", O_RDONLY | O_CLOEXEC));
  return fds;
}

void
test_parse_reply (void **)
{
  Reply reply = parse_reply (Method::Initialize,
                             R"({"success":true,"value":"0.2.3","pipeid":0,"error":""})", {});
  assert_true (reply.success);
  assert_string_equal (json_node_get_string (reply.value.get ()), "0.2.3");

  reply =
    parse_reply (Method::GetManifest,
                 R"({"success":true,"value":"sha256:x","pipeid":8,"error":""})", make_fds (1));
  assert_int_equal (reply.pipe_id, 8);
  assert_int_equal (reply.fds.size (), 1);

  // 0.2.8 replies carry error_code; a failure never carries fds.
  reply = parse_reply (
    Method::GetBlob,
    R"({"success":false,"value":null,"pipeid":0,"error_code":"retryable","error":"x"})", {});
  assert_false (reply.success);
  assert_string_equal (reply.error_code.c_str (), "retryable");

  // JSON as Go writes it, and as it may: escapes, pairs, whitespace, floats, nesting.
  reply = parse_reply (Method::CloseImage,
                       " {\"error\" : \"a\\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00\\n\","
                       "\"success\":false,\"other\":[{\"x\":[1,2.5e3,null,true]},{}],"
                       "\"pipeid\":0.0}\r\n",
                       {});
  assert_false (reply.success);
  assert_string_equal (reply.error.c_str (), "a\"b\\c/d\u00e9\U0001F600\n");
  reply =
    parse_reply (Method::GetLayerInfo,
                 R"({"success":true,"value":[{"digest":"sha256:x","size":-1}],"pipeid":0})", {});
  assert_true (JSON_NODE_HOLDS_ARRAY (reply.value.get ()));
  assert_int_equal (json_array_get_length (json_node_get_array (reply.value.get ())), 1);
  reply = parse_reply (Method::OpenImage, R"({"success":true,"value":3,"value":4})", {});
  assert_int_equal (json_node_get_int (reply.value.get ()), 4);
  reply = parse_reply (Method::OpenImage, R"({"success":true,"value":1e2})", {});
  assert_int_equal (*json_to_uint (reply.value.get ()), 100);

  std::string deep =
    R"({"success":true,"value":)" + std::string (100, '[') + std::string (100, ']') + "}";

  guint before = test_count_open_fds ();
  struct Case
  {
    Method method;
    const char *json;
    size_t fds;
  } bad[] = {
    { Method::Initialize, "not json", 0 },
    { Method::Initialize, "[1,2]", 0 },
    { Method::Initialize, R"({"value":"0.2.3"})", 0 },
    { Method::Initialize, R"({"success":"yes"})", 0 },
    { Method::GetManifest, R"({"success":true,"pipeid":8})", 0 },
    { Method::GetManifest, R"({"success":true,"pipeid":8})", 2 },
    { Method::GetManifest, R"({"success":true,"pipeid":0})", 1 },
    { Method::GetManifest, R"({"success":false,"pipeid":0})", 1 },
    { Method::OpenImage, R"({"success":true,"value":1,"pipeid":3})", 0 },
    { Method::OpenImage, R"({"success":true,"pipeid":-1})", 0 },
    { Method::OpenImage, R"({"success":true,"pipeid":4294967296})", 0 },
    { Method::OpenImage, R"({"success":false,"error":17})", 0 },
    { Method::GetRawBlob, R"({"success":true,"pipeid":0})", 1 },
    // Not JSON, in the ways a hand-written scanner could let slip.
    { Method::Initialize, R"({"success":true} x)", 0 },
    { Method::Initialize, R"({"success":true,})", 0 },
    { Method::Initialize, R"({"success":true "value":1})", 0 },
    { Method::Initialize, R"({"success":tru})", 0 },
    { Method::Initialize, R"({"success":true,"value":01})", 0 },
    { Method::Initialize, R"({"success":true,"value":1.})", 0 },
    { Method::Initialize, R"({"success":true,"value":-})", 0 },
    { Method::Initialize, R"({"success":true,"value":"\x"})", 0 },
    { Method::Initialize, R"({"success":true,"value":"\ud800"})", 0 },
    { Method::Initialize, R"({"success":true,"value":"\udc00\ud800"})", 0 },
    { Method::Initialize, R"({"success":true,"value":"\u00"})", 0 },
    { Method::Initialize, R"({"success":true,"value":"\u0000"})", 0 },
    { Method::Initialize, "{\"success\":true,\"value\":\"\t\"}", 0 },
    { Method::Initialize, "{\"success\":true,\"value\":\"\xff\"}", 0 },
    { Method::Initialize, R"({"success":true,"other":[1,}])", 0 },
    { Method::Initialize, R"({"success":true,"other":{"a"}})", 0 },
    { Method::Initialize, R"({"success":true,"value":[1})", 0 },
    { Method::Initialize, R"({"success":true,"value")", 0 },
    { Method::Initialize, deep.c_str (), 0 },
  };
  for (const Case &c : bad)
    {
      ErrorKind kind = error_kind_of ([&] { parse_reply (c.method, c.json, make_fds (c.fds)); });
      if (kind != ErrorKind::Protocol)
        fail_msg ("%s was accepted", c.json);
    }
  // The fds of rejected replies are closed.
  assert_int_equal (test_count_open_fds (), before);
}

void
test_digests_and_layers (void **)
{
  assert_true (
    is_valid_digest ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  assert_false (
    is_valid_digest ("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  assert_false (is_valid_digest ("sha256:abc"));
  assert_false (is_valid_digest ("sha256"));
  assert_false (is_valid_digest (":abc"));
  assert_true (is_valid_digest ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"));
  assert_false (is_valid_digest ("bad..alg:abc"));

  auto layers = parse_manifest_layers (
    R"({"schemaVersion":2,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",)"
    R"("digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",)"
    R"("size":1024}]})");
  assert_int_equal (layers.size (), 1);
  assert_int_equal (layers[0].size, 1024);
  assert_string_equal (layers[0].media_type.c_str (), "application/vnd.oci.image.layer.v1.tar");

  for (const char *bad : { "{}", "[]", R"({"layers":{}})", R"({"layers":[{"digest":"x"}]})",
                           R"({"layers":[1]})", "{" })
    assert_true (error_kind_of ([&] { parse_manifest_layers (bad); }) == ErrorKind::Protocol);
}

void
test_classify (void **)
{
  assert_true (classify_open_failure ("no descriptor found for reference \"x\"") ==
               ErrorKind::NotFound);
  assert_true (classify_open_failure ("reading manifest 1 in r: manifest unknown: manifest "
                                      "unknown") == ErrorKind::NotFound);
  assert_true (classify_open_failure ("Invalid image name \"foo:bar\", unknown transport "
                                      "\"foo\"") == ErrorKind::InvalidReference);
  assert_true (classify_open_failure ("pinging container registry: connection refused") ==
               ErrorKind::RequestFailed);
  assert_true (classify_transfer_failure ("corrupted blob, expecting sha256:x") ==
               ErrorKind::VerificationFailed);
  assert_true (classify_transfer_failure ("expected 114 bytes in blob, got 113") ==
               ErrorKind::VerificationFailed);
  assert_true (classify_transfer_failure ("write |1: broken pipe") == ErrorKind::RequestFailed);
}

std::unique_ptr<Proxy>
start_skopeo ()
{
  SpawnOptions options;
  options.argv = { "skopeo", "experimental-image-proxy" };
  return Proxy::start (std::move (options), std::chrono::milliseconds (0), -1);
}

// Debian's skopeo speaks 0.2.3: the newer methods are refused before anything is sent, and
// the calls built on them fall back.
void
test_version_gating (void **)
{
  auto proxy = start_skopeo ();
  assert_string_equal (proxy->version ().to_string ().c_str (), "0.2.3");

  struct Gated
  {
    Method method;
    const char *release;
  } gated[] = {
    { Method::OpenImageOptional, "1.11" },
    { Method::GetLayerInfo, "1.11" },
    { Method::GetLayerInfoPiped, "1.19" },
    { Method::GetRawBlob, "1.19" },
  };
  for (const Gated &g : gated)
    {
      try
        {
          proxy->call (g.method, { uint64_t{ 1 } }, -1);
          fail_msg ("%s was sent", method_info (g.method).name);
        }
      catch (const Error &error)
        {
          assert_true (error.kind () == ErrorKind::NotSupported);
          assert_non_null (strstr (error.what (), g.release));
          assert_non_null (strstr (error.what (), "0.2.3"));
        }
    }

  // Had any of them been sent, skopeo would still answer: "unknown method".
  char *ref = test_oci_ref ("multi", "latest");
  uint64_t image = proxy->open_image (ref, false, -1);
  g_free (ref);
  assert_true (image > 0);
  auto layers = proxy->get_layer_info (image, -1);
  assert_int_equal (layers.size (), 3);

  char *missing = test_oci_ref ("multi", "nope");
  assert_int_equal (proxy->open_image (missing, true, -1), 0);
  g_free (missing);

  proxy->shutdown ();
}

// What skopeo answers to requests the library never makes: the server keeps serving.
void
test_raw_requests (void **)
{
  auto proxy = start_skopeo ();
  Reply reply = proxy->call (Method::CloseImage, { uint64_t{ 42 } }, -1);
  assert_false (reply.success);
  assert_non_null (strstr (reply.error.c_str (), "42"));
  reply = proxy->call (Method::FinishPipe, { uint64_t{ 9999 } }, -1);
  assert_false (reply.success);
  assert_non_null (strstr (reply.error.c_str (), "9999"));
  assert_true (error_kind_of ([&] { proxy->open_image ("oci:/nonexistent:x", false, -1); }) ==
               ErrorKind::RequestFailed);
  // A reference too long for one request packet is refused before it is sent.
  assert_true (error_kind_of ([&] {
                 proxy->open_image ("oci:/" + std::string (40000, 'x'), false, -1);
               }) == ErrorKind::InvalidArgument);
  proxy->shutdown ();
}

// Eight threads share one proxy, each opening images and streaming blobs through the core
// alone; run under ThreadSanitizer by build-aux/run-sanitizers.sh.
void
test_threads_share_proxy (void **)
{
  auto proxy = start_skopeo ();
  char *ref = test_oci_ref ("multi", "latest");
  JsonArray *layers = test_expected_layers ("multi:latest");
  std::string reference (ref);
  std::vector<std::thread> threads;
  std::atomic<int> failures{ 0 };

  g_free (ref);
  for (int t = 0; t < 8; t++)
    threads.emplace_back ([&, t] {
      for (int round = 0; round < 6; round++)
        {
          JsonObject *layer = json_array_get_object_element (layers, (t + round) % 3);
          std::string digest = json_object_get_string_member (layer, "digest");
          uint64_t size = json_object_get_int_member (layer, "size");
          try
            {
              uint64_t image = proxy->open_image (reference, false, -1);
              Proxy::BlobPipe pipe = proxy->get_blob (image, digest, size, -1);
              g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
              char buffer[65536];
              uint64_t total = 0;
              while (total < size)
                {
                  ssize_t n = read (pipe.fd.get (), buffer, sizeof buffer);
                  if (n <= 0)
                    break;
                  g_checksum_update (checksum, (const guchar *) buffer, n);
                  total += (uint64_t) n;
                }
              proxy->finish_blob (pipe.pipe_id, std::move (pipe.fd), -1);
              proxy->close_image (image, -1);
              if ("sha256:" + std::string (g_checksum_get_string (checksum)) != digest)
                failures++;
            }
          catch (const Error &)
            {
              failures++;
            }
        }
    });
  for (auto &thread : threads)
    thread.join ();
  assert_int_equal (failures.load (), 0);
  proxy->shutdown ();
}

} // namespace

int
main ()
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_version_parse), cmocka_unit_test (test_build_request),
    cmocka_unit_test (test_parse_reply),   cmocka_unit_test (test_digests_and_layers),
    cmocka_unit_test (test_classify),      cmocka_unit_test (test_version_gating),
    cmocka_unit_test (test_raw_requests),  cmocka_unit_test (test_threads_share_proxy),
  };
  return cmocka_run_group_tests_name ("core", tests, nullptr, nullptr);
}
