// Token texts that say where they stand: token i is " t<i>". A client can
// then tell a lost, repeated or reordered token from the text alone, whatever
// the path in between numbered it.

export function countedToken(i: number): string {
  return ` t${i}`;
}

export function countedTokens(n: number): string[] {
  return Array.from({ length: n }, (_, i) => countedToken(i));
}
