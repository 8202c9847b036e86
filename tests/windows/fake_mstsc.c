/* The fake mstsc.exe of the Windows suite: it records its argv, one per line, in
 * %FAKE_AZ_DIR%\mstsc-argv, copies the .rdp file it was given (its last argument) to
 * %FAKE_AZ_DIR%\mstsc-file, sleeps %FAKE_MSTSC_SLEEP% seconds (0; a session that lasts),
 * and exits with %FAKE_MSTSC_EXIT% (0). */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

int main(int argc, char **argv) {
    const char *dir = getenv("FAKE_AZ_DIR");
    char path[4096];
    if (!dir || argc < 2) return 99;
    snprintf(path, sizeof path, "%s\\mstsc-argv", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 98;
    for (int i = 1; i < argc; i++) fprintf(f, "%s\n", argv[i]);
    fclose(f);
    FILE *in = fopen(argv[argc - 1], "rb");
    if (!in) return 97;
    snprintf(path, sizeof path, "%s\\mstsc-file", dir);
    FILE *out = fopen(path, "wb");
    if (!out) return 96;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    const char *sleep = getenv("FAKE_MSTSC_SLEEP");
    if (sleep) Sleep(1000 * (DWORD)atoi(sleep));
    const char *code = getenv("FAKE_MSTSC_EXIT");
    return code ? atoi(code) : 0;
}
