// The engine command is one string in the config ("llama-server -m model.gguf
// --port 8081"), but it is spawned without a shell: no expansion, no pipes,
// no redirections. This splits it the way a POSIX shell splits words and
// refuses what only a shell would understand, so a typo does not become an
// argument the engine misreads.

/** Unquoted characters that mean something to a shell but nothing here. */
const SHELL_ONLY = new Set(["|", "&", ";", "<", ">", "(", ")", "$", "`"]);

/** Inside double quotes a backslash escapes only these (POSIX). */
const DOUBLE_QUOTE_ESCAPES = new Set(['"', "\\", "$", "`", "\n"]);

/**
 * Splits a command line into argv words: whitespace separates words, '…'
 * keeps everything literally, "…" keeps everything except \" \\ \$ \` and
 * a backslash-newline, and a backslash outside quotes escapes the next
 * character. Throws on an unterminated quote, a trailing backslash, an empty
 * command, and on unquoted | & ; < > ( ) $ ` (there is no shell to interpret
 * them: quote them to pass them on literally).
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  const n = command.length;
  while (i < n) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new SyntaxError(`unterminated ' quote at offset ${i} in command: ${command}`);
      word += command.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      const start = i;
      i++;
      inWord = true;
      for (;;) {
        if (i >= n) throw new SyntaxError(`unterminated " quote at offset ${start} in command: ${command}`);
        const d = command[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && i + 1 < n && DOUBLE_QUOTE_ESCAPES.has(command[i + 1]!)) {
          if (command[i + 1] !== "\n") word += command[i + 1];
          i += 2;
          continue;
        }
        word += d;
        i++;
      }
    } else if (c === "\\") {
      if (i + 1 >= n) throw new SyntaxError(`trailing backslash in command: ${command}`);
      // Backslash-newline continues the line; anything else is taken literally.
      if (command[i + 1] !== "\n") {
        word += command[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (SHELL_ONLY.has(c)) {
      throw new SyntaxError(
        `unquoted ${c} at offset ${i} in command: ${command} (the engine is started without a shell: no pipes, redirections or $VARIABLES; quote it to pass it literally, use the env option for variables)`,
      );
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new SyntaxError("empty engine command");
  return words;
}

/** Quotes one word so that splitCommand gives it back unchanged. */
export function quoteWord(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The inverse of splitCommand: argv words as one command line, for configs and log lines. */
export function joinCommand(words: readonly string[]): string {
  return words.map(quoteWord).join(" ");
}
