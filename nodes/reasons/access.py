"""Who may call what: the rules of the guard (mutual TLS, the policy, the operator's session and roles, the message
itself) and of a client that refuses to talk to a server whose certificate fails (the peer rule)."""
from grpc import StatusCode as S

from nodes.refusal import rule

CERTIFICATE_REQUIRED = rule("CERTIFICATE_REQUIRED", S.UNAUTHENTICATED, "access", "DESIGN §3; PIA Ⅲ(2)7",
                            "a caller presents a client certificate (mutual TLS)")
CERTIFICATE_IDENTITY = rule("CERTIFICATE_IDENTITY", S.UNAUTHENTICATED, "access", "DESIGN §3",
                            "a client certificate carries exactly one URI SAN naming an identity of the testbed")
CERTIFICATE_KEY_USAGE = rule("CERTIFICATE_KEY_USAGE", S.UNAUTHENTICATED, "access", "RFC 5280 §4.2.1.12",
                             "a client certificate allows clientAuth")
CERTIFICATE_ISSUER = rule("CERTIFICATE_ISSUER", S.UNAUTHENTICATED, "access", "DESIGN §3 (trust-domain separation)",
                          "a client certificate is issued by the CA of the domain its identity belongs to")
CERTIFICATE_KEY_SIZE = rule("CERTIFICATE_KEY_SIZE", S.UNAUTHENTICATED, "access", "DESIGN §3",
                            "a client certificate's key is at least RSA 2048 or EC 256 bits")
CERTIFICATE_NOT_IN_TOPOLOGY = rule("CERTIFICATE_NOT_IN_TOPOLOGY", S.UNAUTHENTICATED, "access", "DESIGN §3",
                                   "a client certificate's identity is named in the topology")
CERTIFICATE_REVOKED = rule("CERTIFICATE_REVOKED", S.UNAUTHENTICATED, "access", "DESIGN §3; RFC 5280 §5",
                           "a client certificate is not on its domain CA's CRL")
REVOCATION_UNKNOWN = rule("REVOCATION_UNKNOWN", S.UNAUTHENTICATED, "access", "DESIGN §3",
                          "a node admits no one of a domain whose CRL is missing, stale or badly signed (fail closed)")
DEFAULT_DENY = rule("DEFAULT_DENY", S.PERMISSION_DENIED, "access", "DESIGN §3",
                    "no policy rule lets this kind of caller call this method on this kind of node")
TRUST_DOMAIN = rule("TRUST_DOMAIN", S.PERMISSION_DENIED, "access", "DESIGN §3",
                    "a node accepts certificates only from the trust domains its policy names")
NEVER_CALLS = rule("NEVER_CALLS", S.PERMISSION_DENIED, "access", "DESIGN §3; PIA Ⅲ(2)1",
                   "some kinds of caller never call some kinds of node (e.g. 宛名 and 住基ネット are separate)")
SCOPE = rule("POLICY_SCOPE", S.PERMISSION_DENIED, "access", "DESIGN §3",
             "a caller allowed a method calls it only within its scope (its own municipality, prefecture, domain)")
KIT_IDENTITY = rule("KIT_IDENTITY", S.PERMISSION_DENIED, "access", "DESIGN §3",
                    "a certificate of the bad-certificate kit is never a working credential")
TARGET_READS_ONLY = rule("TARGET_READS_ONLY", S.PERMISSION_DENIED, "access", "DESIGN §7",
                         "a migration target not yet cut over to may only read for the verification")
TERMINAL_CLAIM = rule("TERMINAL_CLAIM", S.PERMISSION_DENIED, "access", "DESIGN §3",
                      "a terminal is the one its certificate names, not one it claims")
SESSION_REQUIRED = rule("SESSION_REQUIRED", S.UNAUTHENTICATED, "access", "DESIGN §3; PIA Ⅲ(2)3",
                        "a terminal call carries an operator session from Login")
SESSION_INVALID = rule("SESSION_INVALID", S.UNAUTHENTICATED, "access", "DESIGN §3",
                       "an operator session is signed by the municipality, unexpired and unaltered")
SESSION_OTHER_TERMINAL = rule("SESSION_OTHER_TERMINAL", S.PERMISSION_DENIED, "access", "DESIGN §3",
                              "an operator session is valid only at the terminal it was issued to")
OPERATOR_CLAIM = rule("OPERATOR_CLAIM", S.PERMISSION_DENIED, "access", "DESIGN §3",
                      "the operator is the session's, not one the call claims")
OPERATOR_NOT_IN_ROSTER = rule("OPERATOR_NOT_IN_ROSTER", S.UNAUTHENTICATED, "access", "DESIGN §3; PIA Ⅲ(2)3",
                              "an operator is in the municipality's roster")
OPERATOR_ROLE_NOT_HELD = rule("OPERATOR_ROLE_NOT_HELD", S.PERMISSION_DENIED, "access", "DESIGN §3; PIA Ⅲ(2)3",
                              "a session claims no role the roster does not give the operator")
OPERATOR_ROLE = rule("OPERATOR_ROLE", S.PERMISSION_DENIED, "access", "PIA Ⅲ(2)3",
                     "an operation at a terminal needs an operator holding one of its roles")
METHOD_UNKNOWN = rule("METHOD_UNKNOWN", S.UNIMPLEMENTED, "access", "gRPC",
                      "a method the node does not serve is UNIMPLEMENTED (authenticated and audited)")
MESSAGE_MALFORMED = rule("MESSAGE_MALFORMED", S.INVALID_ARGUMENT, "access", "gRPC; DESIGN §3",
                         "a request is a valid message of its method")
MESSAGE_UNKNOWN_FIELD = rule("MESSAGE_UNKNOWN_FIELD", S.INVALID_ARGUMENT, "access",
                             "告示第334号 第6-7 (PIA 2306–2312, 2639–2646)",
                             "a request carries only the items its message defines: a field outside them is refused, "
                             "never stored or passed on")
PEER_CERTIFICATE = rule("PEER_CERTIFICATE", S.UNAVAILABLE, "access", "DESIGN §3",
                        "nothing is sent to a server whose certificate is revoked or names another identity")

# -- the roster's lifecycle (nodes/guard.py _admit_roster; docs/operators.md) -----------------------------------
SESSION_REVOKED = rule("SESSION_REVOKED", S.UNAUTHENTICATED, "access", "DESIGN §3; PIA 2464–2471 (アカウント管理)",
                       "a session issued before the operator's roster entry last lost a role counts no more: log in again")
ROSTER_BEHIND = rule("ROSTER_BEHIND", S.UNAVAILABLE, "access", "DESIGN §3",
                     "a node whose copy of the roster is older than a session it cannot admit waits for kizon's (retry)")
ROSTER_UNVERIFIED = rule("ROSTER_UNVERIFIED", S.UNAVAILABLE, "access", "DESIGN §3",
                         "a roster is admitted only signed with its municipality's session key, and never an older one "
                         "than the one held (fail closed)")
ROLE_SCOPE = rule("ROLE_SCOPE", S.PERMISSION_DENIED, "access", "PIA 783–868 (委託事項); PIA 2464–2471",
                  "an operator of a 委託先 (role contractor) calls only the operations the 委託 covers: 住民票の写し等の交付 "
                  "and 住所異動")
ROSTER_SENDER = rule("ROSTER_SENDER", S.PERMISSION_DENIED, "access", "DESIGN §3",
                     "a roster is received from its own municipality's kizon, signed with that municipality's session key")
