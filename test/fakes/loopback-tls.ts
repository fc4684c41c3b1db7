// A self-signed certificate for 127.0.0.1 and localhost (valid until 2126), so fakes can serve
// https:// and tests can trust it through the code path a private CA takes. Made with:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 \
//     -subj "/CN=llorch test loopback" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
//     -addext "basicConstraints=critical,CA:TRUE"
// A test key, on purpose public: it guards nothing.

export const LOOPBACK_TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkgHp3PX1fQiZytGs
MfdFm6MPMOoXEDMwduoR3ROmrzWhRANCAAQYTbhxQLnkev1lHMxLMCqxm96jLuA5
BCpGEBAj6LXuNEDhDJaGrs9cimr/l1J/kazw86htFe3cHk7Ju/cAZ9vj
-----END PRIVATE KEY-----`;

export const LOOPBACK_TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBsDCCAVegAwIBAgIUPlT6Rh5aa/gd/FajLEFd+8T00PEwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUbGxvcmNoIHRlc3QgbG9vcGJhY2swIBcNMjYxMjAxMTEwMzUw
WhgPMjEyNjExMDcxMTAzNTBaMB8xHTAbBgNVBAMMFGxsb3JjaCB0ZXN0IGxvb3Bi
YWNrMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGE24cUC55Hr9ZRzMSzAqsZve
oy7gOQQqRhAQI+i17jRA4QyWhq7PXIpq/5dSf5Gs8POobRXt3B5Oybv3AGfb46Nv
MG0wHQYDVR0OBBYEFHnjkwQt0Z3pHrc6W0eq3ckKYDQ8MB8GA1UdIwQYMBaAFHnj
kwQt0Z3pHrc6W0eq3ckKYDQ8MBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIH+5OJZ/kBDBy1OkVO7i
Zq/lLehRzHkz0rSAoiQaH+wUAiB9oElt7uvjwNEiwgK5N/GwS0TBI4dQN+lkzsTB
sjEJeQ==
-----END CERTIFICATE-----`;
