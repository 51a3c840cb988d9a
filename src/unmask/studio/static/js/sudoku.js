// Sudoku boards for the grid model: a seeded generator (a random full grid, then cells removed)
// and a checker that finds the cells breaking a row, column or box rule.

export function rng(seed) {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

function shuffle(list, rand) {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

const peersOf = Array.from({ length: 81 }, (_, i) => {
  const r = Math.floor(i / 9), c = i % 9, br = r - (r % 3), bc = c - (c % 3);
  const set = new Set();
  for (let k = 0; k < 9; k++) {
    set.add(r * 9 + k);
    set.add(k * 9 + c);
    set.add((br + Math.floor(k / 3)) * 9 + bc + (k % 3));
  }
  set.delete(i);
  return [...set];
});

function fill(grid, rand) {
  const i = grid.indexOf(0);
  if (i < 0) return true;
  for (const d of shuffle([1, 2, 3, 4, 5, 6, 7, 8, 9], rand)) {
    if (peersOf[i].some(p => grid[p] === d)) continue;
    grid[i] = d;
    if (fill(grid, rand)) return true;
  }
  grid[i] = 0;
  return false;
}

/** {puzzle, solution}: 81-character strings, '0' for blanks in the puzzle. */
export function makePuzzle(seed, givens = 32) {
  const rand = rng(seed);
  const grid = new Array(81).fill(0);
  fill(grid, rand);
  const solution = grid.join('');
  const order = shuffle([...Array(81).keys()], rand);
  const puzzle = grid.slice();
  for (const i of order.slice(0, 81 - givens)) puzzle[i] = 0;
  return { puzzle: puzzle.join(''), solution };
}

/** Indexes of filled cells that share a digit with a peer. */
export function conflicts(cells) {
  const bad = new Set();
  for (let i = 0; i < 81; i++) {
    const d = cells[i];
    if (!d || d === '0' || d === '.') continue;
    for (const p of peersOf[i]) if (cells[p] === d) { bad.add(i); bad.add(p); }
  }
  return bad;
}

export function isSolved(cells) {
  return cells.length === 81 && [...cells].every(c => c >= '1' && c <= '9') && conflicts(cells).size === 0;
}
