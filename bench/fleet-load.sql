-- Bulk-load a fleet into an XBoot SQLite registry whose schema xbootctl has just created.
-- Parameters (set by bench/fleet-size.sh with .parameter set): @n = number of devices and of
-- certificates. One transaction. Rows are shaped like xbootd's own: serials are 16 random
-- bytes in lower-case hex, DER blobs 430..529 random bytes (an EC P-256 device certificate is
-- about 435 bytes, RSA-2048 about 700), subjects CN=<reg_id>, SHA-256 hex of the public key.
-- Devices fleet-00000001..: 95% enrolled, 0.2% disabled; the certificate of device i is issued to device i
-- when i is enrolled, else to device i-1 (a re-enrollment), so every certificate belongs to
-- an enrolled device, and the foreign key holds.
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
BEGIN;
DELETE FROM certificates WHERE reg_id = 'bench-schema-probe';
DELETE FROM devices WHERE reg_id = 'bench-schema-probe';
INSERT INTO devices (reg_id, enabled, source, created_at, enrolled_at)
  SELECT printf('fleet-%08d', value),
         CASE WHEN value % 500 = 0 THEN 0 ELSE 1 END,
         'allowlist',
         @t0 + value % 31536000,
         CASE WHEN value % 20 = 0 THEN NULL ELSE @t0 + value % 31536000 + 3600 END
  FROM generate_series(1, @n);
INSERT INTO certificates (serial, reg_id, subject, not_before, not_after, pubkey_sha256,
                          client_addr, issued_at, der)
  SELECT lower(hex(randomblob(16))),
         printf('fleet-%08d', d),
         printf('CN=fleet-%08d', d),
         @t0 + value % 31536000 + 3300,
         @t0 + value % 31536000 + 3600 + 31536000,
         lower(hex(randomblob(32))),
         printf('10.%d.%d.%d', (value >> 16) & 255, (value >> 8) & 255, value & 255),
         @t0 + value % 31536000 + 3600,
         randomblob(430 + abs(random() % 100))
  FROM (SELECT value, CASE WHEN value % 20 = 0 THEN value - 1 ELSE value END AS d
        FROM generate_series(1, @n));
COMMIT;
PRAGMA journal_mode = WAL;
