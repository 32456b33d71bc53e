/* onion.c - not written yet (stub so the build tree configures). */
typedef int ovl_stub_onion;
