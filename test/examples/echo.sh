#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# examples/echo_server under the kernel: 1 MiB of random bytes comes back identical,
# 200 concurrent connections x 16 KiB each echo intact; configured from the environment.
#   test/examples/echo.sh BUILD/examples     (root; exit 77 = skipped)
set -uo pipefail
source "$(dirname "$0")/ex_lab.sh"

ex_test_init ex-echo "$@"
ex_start echo_server 7
lab_check "1 MiB random through echo_server, identical" lab_nsx $EX_CLIENT echo "$LAB_KEEL_IP" 7 1048576 7
lab_check "200 concurrent echo connections x 16 KiB" lab_nsx $EX_CLIENT echo-many "$LAB_KEEL_IP" 7 200 16384
ex_stop
lab_test_end
