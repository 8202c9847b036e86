/* The fake az.exe of the Windows suite, started by az.cmd as the real az.cmd starts python:
 * it records its argv (as the C runtime parsed the command line cmd.exe handed on), one file
 * per call, NUL-separated, in %FAKE_AZ_DIR%\calls; `account get-access-token` prints a token
 * lasting an hour; every other call sleeps %FAKE_AZ_SLEEP% seconds (0), then exits with
 * %FAKE_AZ_EXIT% (0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <windows.h>

int main(int argc, char **argv) {
    const char *dir = getenv("FAKE_AZ_DIR");
    char path[4096];
    FILE *f = NULL;
    int n;
    if (!dir) return 99;
    for (n = 0; n < 10000 && !f; n++) {
        snprintf(path, sizeof path, "%s\\calls\\%04d", dir, n);
        f = fopen(path, "wbx");
    }
    if (!f) return 98;
    for (int i = 1; i < argc; i++) {
        if (i > 1) fputc(0, f);
        fputs(argv[i], f);
    }
    fclose(f);
    if (argc >= 3 && !strcmp(argv[1], "account") && !strcmp(argv[2], "get-access-token")) {
        printf("{\"accessToken\": \"eyJhbGciOiJub25lIn0.e30.SECRET-%04d-\", \"expires_on\": %lld, "
               "\"tenant\": \"t\", \"tokenType\": \"Bearer\"}\n", n - 1, (long long)time(NULL) + 3600);
        return 0;
    }
    const char *sleep = getenv("FAKE_AZ_SLEEP");
    if (sleep) Sleep(1000 * (DWORD)atoi(sleep));
    const char *code = getenv("FAKE_AZ_EXIT");
    return code ? atoi(code) : 0;
}
