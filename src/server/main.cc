// Entry point of the bitmill binary (placeholder until the server lands).
int main() { return 0; }
